"""Shared by the model-based machines: draw a chain of live blocks and link it in memory.

Both the reference's state machine (tests/reference/test_properties.py) and the
fault-injection machine (tests/reliability/test_fault_machine.py) free chains
the same way: pick a size, pick distinct live blocks of that size that have
room for a pointer at ``offset``, and write each node's next pointer there
(API-008).
"""

from __future__ import annotations

from hypothesis import strategies as st

from memslice import Allocator


def draw_chain(
    data: st.DataObject, live: dict[int, tuple[int, bytes]], offset: int
) -> tuple[int, list[int]] | None:
    """A size and a chain of distinct live blocks of that size, or None if none fits."""
    size = data.draw(st.sampled_from(sorted({s for s, _ in live.values()})))
    members = [a for a, (s, _) in live.items() if s == size and s >= offset + 8]
    if not members:
        return None
    return size, data.draw(st.lists(st.sampled_from(members), min_size=1, unique=True))


def link_chain(allocator: Allocator, chain: list[int], offset: int) -> None:
    """Write each node's next pointer (the following node, NULL for the last) at ``offset``."""
    for here, following in zip(chain, [*chain[1:], 0], strict=True):
        allocator.write(here + offset, following.to_bytes(8, "little"))
