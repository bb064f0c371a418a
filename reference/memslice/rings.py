"""Intrusive circular rings: the shape shared by slab rings and depot rings.

Rules and theory of operation
-----------------------------
GLib keeps two kinds of ring, one slab ring and one depot ring per size
class; both are circular doubly linked lists threaded through the records
themselves, entered through a *head*::

    head ─▶ A ─▶ B ─▶ C ─┐        next of the last is the head again
     ▲___________________│        prev of the head is the last (the tail)

Walking a ring means following ``next`` from the head until the head comes
round again.  A ring damaged by misuse might never come round, so every walk
is bounded by how many records could possibly be on it, and a walk that
passes the bound raises :class:`~memslice.errors.SliceAssertionError`
(SLAB-008, DEPOT-001).
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import SliceAssertionError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time (PY-026)
if TYPE_CHECKING:
    from typing import TypeVar

    Node = TypeVar("Node")

__all__ = ["walk"]


def walk(head: Node | None, step: Callable[[Node], Node], limit: int, what: str) -> list[Node]:
    """The records of a ring in order from ``head`` (empty for no head).

    ``step`` gives a record's ``next``; more than ``limit`` records means the
    ring does not close, which only damage can cause.
    """
    if head is None:
        return []
    members = [head]
    node = step(head)
    while node is not head:
        members.append(node)
        if len(members) > limit:
            raise SliceAssertionError(f"{what} does not close")
        node = step(node)
    return members
