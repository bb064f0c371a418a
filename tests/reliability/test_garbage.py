"""Garbage at the API: random values thrown at every public function and method.

A Hypothesis state machine calls ``alloc``, ``alloc0``, ``copy``, ``free1``,
``free_chain_with_offset``, ``set_config``, ``get_config``,
``get_config_state``, ``read``, ``write``, ``view`` and the typed helpers
``new``, ``new0``, ``dup``, ``free``, ``free_chain`` with arguments drawn from
a mix of plausible values (live blocks with their sizes, NULL, real ctypes
types and instances) and garbage (floats, strings, ``None``, bools, bytes,
huge and negative ints, addresses of foreign memory, offsets past the block,
ctypes instances where types belong, non-pointer fields).  Each call either
works -- and the model of held blocks follows what it did -- or raises one of
the documented typed errors (PY-001 to PY-004, PY-008, PY-017, PY-018:
``SliceUsageError`` subclasses, or ``SliceMemoryError`` for sizes no memory
can hold, PY-003).  Anything else (a bare ``TypeError``, ``AttributeError``,
``OverflowError``...) fails the test.  After every call the consistency
checker, given the model's blocks, passes (PY-006, INTRO-003).

The allocator runs with debug-blocks, so a wrong size or a stale address in
a release is refused (PY-018) instead of silently corrupting the allocator as
GLib would (API-013); a second machine runs without debug-blocks and only
pairs live blocks with their own size or with non-integers.

Two things are *not* thrown, on purpose: an arbitrary integer as ``copy``'s
source (``copy`` reads any readable memory, as ``g_slice_copy`` does, so a
bogus source address faults as it would in C: API-003), and ``write``s past
the end of a slab block (the arena is the allocator's own memory, PY-010:
such a write is the caller corrupting the allocator, like an overflow in C).
"""

from __future__ import annotations

import ctypes
import sys
import warnings
from collections import Counter
from typing import Any, ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from memslice import Allocator, ConfigWarning, SliceConfig, typed
from memslice.errors import SliceMemoryError, SliceTypeError, SliceUsageError

from .support import record

DOCUMENTED = (SliceUsageError, SliceMemoryError)

CALLS: Counter[str] = Counter()
"""Calls made by the machines, as "worked" or by the typed error that refused them."""


class Node(ctypes.Structure):
    """A list node: a pointer-sized ``next`` and a payload."""

    _fields_ = [("value", ctypes.c_int64), ("next", ctypes.c_void_p), ("pad", ctypes.c_char * 8)]


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_int32), ("b", ctypes.c_int32)]


class Empty(ctypes.Structure):
    _fields_: ClassVar[list[tuple[str, Any]]] = []


SENTINEL = (ctypes.c_ubyte * 256)()
FOREIGN = ctypes.addressof(SENTINEL)  # memory the allocator never handed out

GARBAGE: st.SearchStrategy[object] = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.binary(max_size=8),
    st.integers(min_value=-(1 << 70), max_value=-1),
    st.integers(min_value=1 << 63, max_value=1 << 70),
    st.just(FOREIGN),
    st.just(FOREIGN + 8),
    st.sampled_from([1j, [], (), {}, object(), Node, ctypes.c_int, Node(), b"\x00" * 16]),
)
SIZES: st.SearchStrategy[object] = st.one_of(
    st.sampled_from([0, 1, 8, 16, 17, 24, 100, 1008, 1009, 5000, 1 << 60, sys.maxsize]),
    GARBAGE,
)
TYPES: st.SearchStrategy[object] = st.sampled_from(
    [
        *(Node, Pair, Empty, ctypes.c_int, ctypes.c_char * 3000, ctypes.c_char * (1 << 60)),
        *(ctypes.POINTER(Node), int, str, None, 3, Node(), "Node", ctypes.c_void_p),
    ]
)


class GarbageMachine(RuleBasedStateMachine):
    """Every public call, plausible and garbage arguments, a model of held blocks."""

    environ: ClassVar[dict[str, str]] = {"G_SLICE": "debug-blocks"}
    exact_sizes_only: ClassVar[bool] = False  # True without debug-blocks (see module doc)

    def __init__(self) -> None:
        super().__init__()
        self.allocator = Allocator(environ=self.environ)
        self.live: dict[int, int] = {}  # address -> size, insertion-ordered
        self.objects: list[tuple[type[ctypes.Structure], ctypes.Structure]] = []
        self._adopt(self.allocator.alloc(24), 24)  # initialised: set_config now only warns

    def teardown(self) -> None:
        # Not close(): typed objects live in the arena, and a failing example's
        # report may still repr them; unmapping would turn that into a segfault.
        self.objects.clear()

    # -- model -------------------------------------------------------------------
    def _adopt(self, address: int, size: int) -> None:
        if address:
            assert address not in self.live
            ctypes.memset(address, 0, size)  # chains start with NULL links: predictable walks
            self.live[address] = size
        else:
            assert size == 0  # API-001

    def _is_live(self, value: object) -> bool:
        return value.__class__ is int and value in self.live

    def _call(self, function: Any, *args: object) -> tuple[bool, Any]:
        """Call; True and the result, or False after a documented typed error."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConfigWarning)  # PY-013: late set_config
                result = function(*args)
        except DOCUMENTED as error:
            CALLS[type(error).__name__] += 1
            return False, None
        CALLS["worked"] += 1
        return True, result

    def _address(self, data: st.DataObject) -> object:
        choices: list[st.SearchStrategy[object]] = [GARBAGE, st.just(0)]
        if self.live:
            choices.append(st.sampled_from(list(self.live)))
        return data.draw(st.one_of(*choices))

    def _size_for(self, data: st.DataObject, address: object) -> object:
        if self._is_live(address):
            exact = st.just(self.live[address])  # type: ignore[index]
            if self.exact_sizes_only:
                return data.draw(st.one_of(exact, GARBAGE.filter(lambda v: v.__class__ is not int)))
            return data.draw(st.one_of(exact, SIZES))
        return data.draw(SIZES)

    def _chain(self, head: int, size: int, offset: int) -> list[int]:
        """The nodes a chain walk from ``head`` would free, read before the call."""
        nodes: list[int] = []
        node = head
        while node and node not in nodes and node in self.live:
            nodes.append(node)
            if not 0 <= offset <= self.live[node] - 8:
                break
            node = int.from_bytes(ctypes.string_at(node + offset, 8), sys.byteorder)
        return nodes

    # -- allocation ----------------------------------------------------------------
    @rule(data=st.data(), how=st.sampled_from(["alloc", "alloc0"]))
    def allocate(self, data: st.DataObject, how: str) -> None:
        size = data.draw(SIZES)
        worked, address = self._call(getattr(self.allocator, how), size)
        if worked:
            assert size.__class__ is int and address.__class__ is int  # PY-001
            self._adopt(address, size)  # type: ignore[arg-type]

    @rule(data=st.data())
    def copy(self, data: st.DataObject) -> None:
        source: object = data.draw(
            st.one_of(
                GARBAGE.filter(lambda v: v.__class__ is not int), st.just(0), st.binary(max_size=40)
            )
        )
        if self.live and data.draw(st.booleans()):
            source = data.draw(st.sampled_from(list(self.live)))
        if self._is_live(source):
            limit = self.live[source]  # type: ignore[index]
            size = data.draw(
                st.one_of(
                    st.integers(0, limit), GARBAGE.filter(lambda v: v.__class__ is not int or v < 0)
                )
            )
        else:
            size = data.draw(SIZES)
        worked, address = self._call(self.allocator.copy, size, source)
        if worked:
            assert size.__class__ is int
            self._adopt(address, size)  # type: ignore[arg-type]

    # -- release -------------------------------------------------------------------
    @rule(data=st.data())
    def free1(self, data: st.DataObject) -> None:
        address = self._address(data)
        size = self._size_for(data, address)
        worked, _ = self._call(self.allocator.free1, size, address)
        if worked and address:
            assert self.live.pop(address) == size  # type: ignore[call-overload]

    @rule(data=st.data())
    def free_chain_with_offset(self, data: st.DataObject) -> None:
        head = self._address(data)
        size = self._size_for(data, head)
        offset = data.draw(st.one_of(st.sampled_from([0, 8, 16, 24, 100, 1 << 40]), GARBAGE))
        if self._is_live(head) and data.draw(st.booleans()):
            # link a few live blocks of this size (or a stray node) through `offset`
            same = [a for a, s in self.live.items() if s == size and a != head]
            strays = [FOREIGN, 0] if self.exact_sizes_only else [FOREIGN, head + 16, 0]
            following = data.draw(st.sampled_from([*same[:4], *strays]))
            if offset.__class__ is int and 0 <= offset <= self.live[head] - 8:  # type: ignore[index, operator]
                self.allocator.write(head + offset, following.to_bytes(8, sys.byteorder))  # type: ignore[operator]
        nodes = (
            self._chain(head, size, offset)  # type: ignore[arg-type]
            if head.__class__ is int and offset.__class__ is int
            else []
        )
        worked, _ = self._call(self.allocator.free_chain_with_offset, size, head, offset)
        if worked and head:
            for node in nodes:
                assert self.live.pop(node) == size

    # -- configuration --------------------------------------------------------------
    @rule(
        key=st.one_of(st.sampled_from(list(SliceConfig)), st.integers(-5, 10), GARBAGE),
        value=st.one_of(st.integers(-(1 << 64), 1 << 64), GARBAGE),
    )
    def configure(self, key: object, value: object) -> None:
        allocator = self.allocator
        before = [allocator.get_config(k) for k in SliceConfig]
        self._call(allocator.set_config, key, value)
        assert [allocator.get_config(k) for k in SliceConfig] == before  # PY-013
        worked, answer = self._call(allocator.get_config, key)
        assert not worked or answer.__class__ is int
        worked, state = self._call(allocator.get_config_state, key, value)
        if worked and state is not None:  # PY-017
            assert isinstance(state, list) and len(state) == 3
            assert all(v.__class__ is int for v in state)

    # -- block access ----------------------------------------------------------------
    @rule(data=st.data(), how=st.sampled_from(["read", "view"]))
    def look(self, data: st.DataObject, how: str) -> None:
        address = self._address(data)
        length = data.draw(st.one_of(st.integers(0, 64), SIZES))
        worked, result = self._call(getattr(self.allocator, how), address, length)
        if worked:
            assert len(result) == length  # PY-010

    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        address = self._address(data)
        payload = data.draw(st.one_of(st.binary(max_size=24), GARBAGE))
        if self._is_live(address) and isinstance(payload, (bytes, bytearray)):
            payload = payload[: self.live[address]]  # type: ignore[index]
        self._call(self.allocator.write, address, payload)

    # -- typed helpers ----------------------------------------------------------------
    @rule(data=st.data(), how=st.sampled_from(["new", "new0", "dup"]))
    def typed_new(self, data: st.DataObject, how: str) -> None:
        ctype = data.draw(TYPES)
        args: tuple[object, ...] = (self.allocator, ctype)
        if how == "dup":
            candidates: list[object] = [Node(), Pair(), None, 5, "x"]
            candidates += [obj for _, obj in self.objects[:3]]
            args += (data.draw(st.sampled_from(candidates)),)
        worked, obj = self._call(getattr(typed, how), *args)
        if worked and obj is not None:
            assert isinstance(obj, ctype)  # type: ignore[arg-type]  # PY-008
            self._adopt(ctypes.addressof(obj), ctypes.sizeof(obj))
            self.objects.append((ctype, obj))  # type: ignore[arg-type]

    @precondition(lambda self: self.objects)
    @rule(data=st.data(), chain=st.booleans())
    def typed_free(self, data: st.DataObject, chain: bool) -> None:
        index = data.draw(st.integers(0, len(self.objects) - 1))
        ctype, obj = self.objects[index]
        others = [int, None] if self.exact_sizes_only else [Node, Pair, int, None]
        wrong_type = data.draw(st.sampled_from([ctype, ctype, *others]))
        address = ctypes.addressof(obj)
        if address not in self.live:  # freed earlier as part of a chain
            del self.objects[index]
            return
        if chain:
            field = data.draw(st.sampled_from(["next", "value", "missing", "pad", 3, None]))
            descriptor = getattr(wrong_type, field, None) if isinstance(field, str) else None
            offset = getattr(descriptor, "offset", -1)
            nodes = self._chain(address, self.live[address], offset) if offset >= 0 else []
            worked, _ = self._call(typed.free_chain, self.allocator, wrong_type, obj, field)
        else:
            nodes = [address]
            worked, _ = self._call(typed.free, self.allocator, wrong_type, obj)
        if worked:
            for node in nodes:
                del self.live[node]
            self.objects = [(t, o) for t, o in self.objects if ctypes.addressof(o) in self.live]

    # -- the property --------------------------------------------------------------------
    @invariant()
    def allocator_is_sound(self) -> None:
        self.allocator.check(live=list(self.live.items()))  # PY-006, INTRO-003
        assert bytes(SENTINEL) == bytes(256)  # foreign memory never written (PY-004)


class PlainGarbageMachine(GarbageMachine):
    """Without debug-blocks: live blocks only ever meet their own size (see module doc)."""

    environ: ClassVar[dict[str, str]] = {}
    exact_sizes_only = True


TestGarbageDebugBlocks = GarbageMachine.TestCase
TestGarbageDebugBlocks.settings = settings(max_examples=60, stateful_step_count=40)
TestGarbagePlain = PlainGarbageMachine.TestCase
TestGarbagePlain.settings = settings(max_examples=40, stateful_step_count=40)


def test_typed_free_chain_rejects_a_non_string_field_name() -> None:
    """PY-001, PY-008: a field name that is not a string raises SliceTypeError."""
    allocator = Allocator(environ={})
    node = typed.new(allocator, Node)
    try:
        with pytest.raises(SliceTypeError):
            typed.free_chain(allocator, Node, node, 3)  # type: ignore[arg-type]
    finally:
        allocator.check(live=[(ctypes.addressof(node), ctypes.sizeof(Node))] if node else [])


@pytest.mark.slow
def test_garbage_soak() -> None:
    """PY-001 to PY-004, PY-006: long runs of both machines; count the calls and their verdicts.

    Every call either worked or raised a documented typed error (anything
    else fails the machine); the count shows how much garbage was thrown.
    """
    CALLS.clear()
    for machine, examples in ((GarbageMachine, 400), (PlainGarbageMachine, 300)):
        run_state_machine_as_test(
            machine, settings=settings(max_examples=examples, stateful_step_count=60)
        )
    refused = sum(count for verdict, count in CALLS.items() if verdict != "worked")
    by_error = ", ".join(f"{count:,} {name}" for name, count in sorted(CALLS.items())
                         if name != "worked")
    print(f"\ngarbage: {sum(CALLS.values()):,} calls, {refused:,} refused ({by_error})")
    assert refused > 1_000 and CALLS["worked"] > 1_000
    record("bad inputs tried",
           f"API garbage: {sum(CALLS.values()):,} calls with garbage or plausible arguments; "
           f"{CALLS['worked']:,} worked, {refused:,} refused with a typed error ({by_error}), "
           "none with anything else; the checker passed after each")
