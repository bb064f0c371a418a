"""memslice_bench: the slice design measured against real peers, in time and space.

Rules and theory of operation
-----------------------------
Terms: a *peer* is an allocator behind the small :class:`~memslice_bench.peers.Peer`
Protocol (alloc/free of a size, plus space figures); a *workload* (W1..W8) is
a deterministic program of allocations and frees that runs on any peer it
applies to; a *round* runs every chosen peer once on a fresh instance, in a
rotating order, so machine noise falls on all peers alike::

    cli ──▶ harness.run(workloads, peers, rounds)
               for each workload W, for r in rounds:
                   for peer in rotate(peers, r):  outcome = W(peer_factory(), params)
               stats per peer (median ns/op, pytest-benchmark Stats),
               ratios to the reference taken per round, then the median
            ──▶ results JSON ──▶ plots (matplotlib SVG)

Invariants: every comparison is a ratio of figures taken in the same run;
utilisation ``U = live requested / mapped`` lies in (0, 1]; space figures say
where they come from (the reference's snapshot, a model's own accounting, or
glibc's ``mallinfo2``).  Clauses measured: API-001, API-013 (fast path),
MAG-005, DEPOT-007 (release on trim), COLOR-005 (colouring), INTRO-002
(totals).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
