"""Records: the frozen, slotted value classes of the start-up path, without ``dataclasses``.

Rules and theory of operation
-----------------------------
``Tunables``, ``Settings``, ``SizeClass`` and ``Geometry`` are created while
``import memslice; memslice.Allocator()`` runs.  As dataclasses they cost that
start-up the import of ``dataclasses``, which imports ``inspect`` (and
with it ``ast``, ``dis``, ``tokenize``, ``linecache``): about as much CPU as
the rest of the package together (PY-026).  :func:`record` gives a class the
part of ``@dataclass(frozen=True, slots=True)`` those four use::

    @record                                 fields: the annotated names, in order
    class Tunables:                         defaults: their class-level values
        name: str                      ──▶  __slots__, __init__(name, pointer_size=8, ...)
        pointer_size: int = 8               __post_init__ called last, if defined
        def __post_init__(self): ...        __eq__/__hash__ over the fields, same class only
                                            __repr__ "Tunables(name='x', pointer_size=8)"
                                            assignment and deletion raise FrozenRecordError

:func:`replace` is ``dataclasses.replace`` for these records and :func:`fields`
their field names.  ``__init__`` binds its arguments by hand rather than from
generated source (compiling is itself a start-up cost); type checkers see the
real signature through ``dataclass_transform``.  Records pickle and copy by
their fields.  The snapshot classes and the tools' records stay dataclasses:
they are loaded on first use, not at start-up.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform  # typing's own is 3.11+

    T = TypeVar("T")
else:

    def dataclass_transform(**_: object) -> object:
        """Only type checkers read ``dataclass_transform``; at run time it marks nothing."""
        return lambda function: function


__all__ = ["FrozenRecordError", "fields", "record", "replace"]


class FrozenRecordError(AttributeError):
    """A record's field was assigned or deleted (records are immutable)."""


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenRecordError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenRecordError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")


def _values(self: Any) -> tuple[object, ...]:
    return tuple(getattr(self, name) for name in self.__record_fields__)


def _eq(self: Any, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return bool(_values(self) == _values(other))


def _hash(self: Any) -> int:
    return hash(_values(self))


def _repr(self: Any) -> str:
    body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_fields__)
    return f"{type(self).__qualname__}({body})"


def _reduce(self: Any) -> tuple[type, tuple[object, ...]]:
    return type(self), _values(self)


def _make_init(name: str, names: tuple[str, ...], defaults: dict[str, object]) -> Any:
    """An ``__init__`` binding positional and keyword arguments to ``names``, as Python does.

    Not generated source (``dataclasses`` compiles one per class): compiling
    costs start-up more than binding a handful of arguments by hand, and these
    records are built a few times per allocator, never on a hot path.
    """
    required = [field for field in names if field not in defaults]

    def __init__(self: Any, *args: object, **kwargs: object) -> None:
        if len(args) > len(names):
            raise TypeError(
                f"{name}() takes {len(names)} positional arguments but {len(args)} were given"
            )
        values = dict(zip(names, args, strict=False))  # extra args were refused above
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{name}() got multiple values for argument {key!r}")
            values[key] = value
        missing = [field for field in required if field not in values]
        if missing:
            raise TypeError(f"{name}() missing required arguments: {', '.join(missing)}")
        for field in names:
            object.__setattr__(self, field, values[field] if field in values else defaults[field])
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    return __init__


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    """Turn an annotated class into a frozen, slotted record (see the module header)."""
    namespace = dict(cls.__dict__)
    names = tuple(namespace.get("__annotations__", {}))
    defaults = {name: namespace.pop(name) for name in names if name in namespace}
    for name in ("__dict__", "__weakref__"):
        namespace.pop(name, None)
    init = _make_init(cls.__name__, names, defaults)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = "{}({})".format(  # a signature line for help() and Sphinx
        cls.__name__,
        ", ".join(f"{n}={defaults[n]!r}" if n in defaults else n for n in names),
    )
    namespace.update(
        __slots__=names,
        __record_fields__=names,
        __init__=init,
        __setattr__=_frozen_setattr,
        __delattr__=_frozen_delattr,
        __eq__=_eq,
        __hash__=_hash,
        __repr__=_repr,
        __reduce__=_reduce,
        __match_args__=names,
    )
    return type(cls.__name__, cls.__bases__, namespace)


def fields(obj: object) -> tuple[str, ...]:
    """The field names of a record (or record class), in declaration order."""
    names: tuple[str, ...] = getattr(obj, "__record_fields__")  # noqa: B009
    return names


def replace(obj: T, /, **changes: object) -> T:
    """A copy of the record ``obj`` with ``changes`` applied (``dataclasses.replace``)."""
    current = {name: getattr(obj, name) for name in fields(obj)}
    unknown = set(changes) - set(current)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {', '.join(sorted(unknown))}")
    current.update(changes)
    return type(obj)(**current)
