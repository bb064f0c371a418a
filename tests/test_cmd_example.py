"""The docs' JavaScript allocator speaks memslice-jsonl v1 and conforms.

``docs/howto/examples/slice.js`` is the how-to's example of an allocator in
another language (docs/howto/any-language.md).  These tests run it exactly as
the page says, through ``--impl "cmd:node ..."``: the protocol validator must
find nothing, the core profile must pass (small budget: the default run stays
fast), and -- testing the tester -- a copy with one deliberate bug must be
rejected with the clause that bug breaks.  Node.js is part of this project's
development machine; a missing ``node`` fails here loudly instead of skipping.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from memslice_conformance.impl.validate import validate_protocol
from memslice_conformance.runner import run_conformance

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "howto" / "examples" / "slice.js"
ZEROING = "if (addr !== 0) put(addr, Buffer.alloc(r.size)); // recycled chunks hold old bytes"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    assert found, "node (Node.js >= 18) is needed for the how-to's example: apt-get install nodejs"
    return found


def test_the_example_speaks_the_protocol(node: str) -> None:
    """``validate-protocol`` finds no problem in the example's answers."""
    assert validate_protocol(f"cmd:{node} {EXAMPLE}") == []


def test_the_example_conforms_to_the_core_profile(node: str) -> None:
    """Every core check passes (API-001..API-013, API-020, CONF-*, EXIT-001/005)."""
    report = run_conformance(f"cmd:{node} {EXAMPLE}", max_examples=3)
    assert [c.name for c in report.checks] == [
        "edges",
        "sizes_sweep",
        "chain_sweep",
        "machine",
        "threads",
        "thread_churn",
        "hammer",
        "failure_paths",
        "scale",
    ]
    assert report.conforming, [c.failure for c in report.checks if c.failure]
    assert report.implementation == "node-example"


def test_a_broken_copy_of_the_example_is_rejected(node: str, tmp_path: Path) -> None:
    """Test the tester: the same program with alloc0 not zeroing fails API-002."""
    source = EXAMPLE.read_text(encoding="utf-8")
    assert source.count(ZEROING) == 1, "the example changed: update ZEROING"
    broken = tmp_path / "broken.js"
    broken.write_text(source.replace(ZEROING, ""), encoding="utf-8")
    report = run_conformance(
        f"cmd:{node} {broken}", max_examples=3, checks=["sizes_sweep"], trace_dir=tmp_path
    )
    assert not report.conforming
    failure = report.checks[0].failure
    assert failure is not None
    assert "API-002" in failure.clauses, failure
