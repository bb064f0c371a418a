"""checks: see the package docstring of memslice_conformance."""
