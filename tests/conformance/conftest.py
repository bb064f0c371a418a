"""Fixtures for testing the conformance suite: test implementations, C builds.

The Python test implementations live in ``impls/pyimpls.py`` (importable as
``pyimpls``, also through ``--impl py:pyimpls:NAME``); the C one is
``impls/cslice.c``, compiled here once per session with gcc in each variant.
A missing compiler fails these tests loudly: it is never a skip.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from c_builds import c_library_builder

IMPLS = Path(__file__).parent / "impls"
if str(IMPLS) not in sys.path:
    sys.path.insert(0, str(IMPLS))

# pytester (for the plugin tests) is loaded by addopts in pyproject.toml:
# pytest refuses pytest_plugins in a conftest below the rootdir.

#: C variants: -D flag -> what it plants.
C_VARIANTS = (
    "CORRECT",
    "BUG_OVERLAP",
    "BUG_ALLOC0_DIRTY",
    "BUG_SEGV",
    "BUG_ABORT",
    "BUG_HANG",
    "BUG_CHAIN_OFFSET0",
)


@pytest.fixture(scope="session")
def clib(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """Compile ``impls/cslice.c`` in a variant; returns the ``lib:`` spec."""
    build = c_library_builder(tmp_path_factory, IMPLS / "cslice.c", "libcslice_{variant}.so")
    return lambda variant: f"lib:{build(variant)}"
