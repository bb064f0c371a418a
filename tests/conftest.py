"""Shared test configuration: Hypothesis profiles and common fixtures.

The ``ci`` profile (selected by tox through ``HYPOTHESIS_PROFILE``) is
derandomised, so every CI run explores the same examples; ``dev`` explores
freely.  Set ``HYPOTHESIS_PROFILE=dev`` locally to hunt for new failures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from memslice import MINIMAL, Allocator

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def allocator() -> Iterator[Allocator]:
    """A fresh GLib-2.74-profile allocator, with G_SLICE/G_DEBUG unset."""
    instance = Allocator(environ={})
    yield instance
    instance.close()


@pytest.fixture
def minimal() -> Iterator[Allocator]:
    """A fresh minimal-profile allocator (tiny slabs, 4-chunk magazines)."""
    instance = Allocator(MINIMAL, environ={})
    yield instance
    instance.close()
