"""Model-based property tests: random programs against a model of live blocks.

The model holds each live block's size and the bytes last written to it.  On
both profiles, after every step: live blocks never overlap, every block still
holds its bytes, and the consistency checker proves no chunk is lost or
doubled (INTRO-003).  The minimal profile (3 classes, 4-chunk magazines, 50 ms
working set, stepped clock) reaches reloads, unloads, depot trims and slab
release within a few steps.
"""

from __future__ import annotations

import itertools
import threading

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from slice_chains import draw_chain, link_chain

from memslice import MINIMAL, Allocator, SliceConfig
from memslice.tunables import Tunables

from .test_depot import SteppedClock


class AllocatorMachine(RuleBasedStateMachine):
    """alloc / alloc0 / copy / free1 / free_chain / thread exit / time passing."""

    profile: Tunables = MINIMAL
    sizes = st.integers(min_value=0, max_value=120)

    def __init__(self) -> None:
        super().__init__()
        self.clock = SteppedClock()
        self.allocator = Allocator(self.profile, environ={}, clock=self.clock)
        self.live: dict[int, tuple[int, bytes]] = {}
        self.counter = 0

    def teardown(self) -> None:
        self.allocator.close()

    def _stamp(self, size: int) -> bytes:
        self.counter += 1
        return bytes((self.counter * 7 + k) & 0xFF for k in range(size))

    def _add(self, address: int, size: int, content: bytes) -> None:
        if size == 0:
            assert address == 0  # API-001
            return
        assert address and address not in self.live
        assert address % 8 == 0  # API-006
        self.live[address] = (size, content)

    @rule(size=sizes)
    def alloc(self, size: int) -> None:
        address = self.allocator.alloc(size)
        content = self._stamp(size)
        if size:
            self.allocator.write(address, content)
        self._add(address, size, content)

    @rule(size=sizes)
    def alloc0(self, size: int) -> None:
        address = self.allocator.alloc0(size)
        if size:
            assert self.allocator.read(address, size) == bytes(size)  # API-002
        self._add(address, size, bytes(size))

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def copy(self, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(list(self.live)))
        size, content = self.live[source]
        address = self.allocator.copy(size, source)
        assert address != source and self.allocator.read(address, size) == content  # API-003
        self._add(address, size, content)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free1(self, data: st.DataObject) -> None:
        address = data.draw(st.sampled_from(list(self.live)))
        size, _ = self.live.pop(address)
        self.allocator.free1(size, address)

    @precondition(lambda self: len(self.live) >= 2)
    @rule(data=st.data(), offset=st.sampled_from([0, 8]))
    def free_chain(self, data: st.DataObject, offset: int) -> None:
        drawn = draw_chain(data, self.live, offset)
        if drawn is None:
            return
        size, chain = drawn
        link_chain(self.allocator, chain, offset)
        self.allocator.free_chain_with_offset(size, chain[0], offset)
        for address in chain:
            del self.live[address]

    @rule(sizes=st.lists(sizes, max_size=12))
    def thread_that_allocates_frees_and_exits(self, sizes: list[int]) -> None:
        """EXIT-001: another thread churns its own blocks, then its magazines retire."""

        def body() -> None:
            blocks = [(self.allocator.alloc(s), s) for s in sizes]
            for address, size in blocks:
                self.allocator.free1(size, address)

        thread = threading.Thread(target=body)
        thread.start()
        thread.join()

    @rule(msecs=st.sampled_from([1, 60, 20_000]))
    def time_passes(self, msecs: int) -> None:
        self.clock.now += msecs

    @rule()
    def main_thread_exit(self) -> None:
        self.allocator.thread_exit()

    @invariant()
    def blocks_are_disjoint_and_intact(self) -> None:
        spans = sorted((address, address + size) for address, (size, _) in self.live.items())
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start  # API-004: no overlap
        for address, (size, content) in self.live.items():
            assert self.allocator.read(address, size) == content  # API-005: integrity

    @invariant()
    def nothing_lost_or_doubled(self) -> None:
        self.allocator.check(live=[(a, s) for a, (s, _) in self.live.items()])


class MinimalMachine(AllocatorMachine):
    profile = MINIMAL


class GlibMachine(AllocatorMachine):
    profile = Allocator().tunables
    sizes = st.one_of(
        st.integers(min_value=0, max_value=64),
        st.sampled_from([1007, 1008, 1009, 1024, 2000]),
        st.integers(min_value=0, max_value=1100),
    )


class EagerGlibMachine(GlibMachine):
    """working_set_msecs = 0: every push trims (DEPOT-007)."""

    def __init__(self) -> None:
        super().__init__()
        self.allocator.set_config(SliceConfig.WORKING_SET_MSECS, 0)


TestMinimal = MinimalMachine.TestCase
TestMinimal.settings = settings(max_examples=60, stateful_step_count=60)
TestGlib = GlibMachine.TestCase
TestGlib.settings = settings(max_examples=30, stateful_step_count=40)
TestEagerGlib = EagerGlibMachine.TestCase
TestEagerGlib.settings = settings(max_examples=20, stateful_step_count=40)
