"""profiles: see the package docstring of memslice_conformance."""
