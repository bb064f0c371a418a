"""memslice_conformance: the executable conformance suite for slice allocators."""
