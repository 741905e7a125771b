"""Emulator state declared once: seeded on reset, dumped as JSON, loaded back checked.

The sandbox keeps each emulator's state between processes (the state file) and
puts it back to the demo data on reset. Instead of writing ``reset``,
``dump_state`` and ``load_state`` by hand - three lists of the same attributes
that drift apart - an emulator declares each piece of state once::

    class ToyshopEmulator(StatefulEmulator):
        orders = StateField(SEED_ORDERS)            # deep-copied on every reset
        counter = StateField(0)
        _windows: StateField[deque[float]] = StateField(factory=deque, kept=False)

and reads and writes ``self.orders`` as any attribute.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from .emulator import Emulator

T = TypeVar("T")
_UNSET: Any = object()


class StateError(ValueError):
    """A saved state this emulator cannot load (missing field, wrong type, garbage)."""


class StateField(Generic[T]):
    """One piece of an emulator's state, declared as a class attribute.

    ``seed`` is the value after a reset (deep-copied each time), or ``factory()``
    builds it. ``kept=False`` marks scratch state (a rate window) that reset
    clears but the state file never holds. ``required=False`` lets a state saved
    before the field existed load, seeding the field. ``load`` turns a dumped
    value back into the field's value and raises TypeError or ValueError on one
    it refuses; by default the value must have the seed's JSON type.
    """

    def __init__(
        self,
        seed: T = _UNSET,
        *,
        factory: Callable[[], T] | None = None,
        kept: bool = True,
        required: bool = True,
        load: Callable[[Any], T] | None = None,
    ) -> None:
        if (seed is _UNSET) == (factory is None):
            raise TypeError("StateField takes a seed or a factory, not both or neither")
        self._seed = seed
        self._factory = factory
        self.kept = kept
        self.required = required
        self._load = load
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, emulator: None, owner: type) -> StateField[T]: ...
    @overload
    def __get__(self, emulator: object, owner: type) -> T: ...
    def __get__(self, emulator: object | None, owner: type) -> StateField[T] | T:
        if emulator is None:
            return self
        try:
            value: T = emulator.__dict__[self.name]
        except KeyError:
            raise AttributeError(
                f"{type(emulator).__name__}.{self.name} is not set yet: "
                "StatefulEmulator.__init__ (or reset) seeds it"
            ) from None
        return value

    def __set__(self, emulator: object, value: T) -> None:
        emulator.__dict__[self.name] = value

    def seed(self, emulator: StatefulEmulator) -> T:
        """The value after a reset: a deep copy of the seed, or a new ``factory()``."""
        if self._factory is not None:
            return self._factory()
        return copy.deepcopy(self._seed)

    def dump(self, value: T) -> Any:
        """The value as it goes into the state file (JSON-ready)."""
        return value

    def load(self, raw: Any, emulator: StatefulEmulator) -> T:
        """A dumped value back as the field's value; TypeError or ValueError if refused."""
        if self._load is not None:
            return self._load(raw)
        sample = self._seed if self._factory is None else self._factory()
        _check_type(raw, sample)
        if isinstance(sample, float):
            return float(raw)  # type: ignore[return-value]  # an int where a float is kept
        loaded: T = copy.deepcopy(raw)
        return loaded


def _check_type(raw: Any, sample: Any) -> None:
    """Refuse ``raw`` unless it has the JSON type of ``sample`` (None takes anything)."""
    if sample is None:
        return
    if isinstance(sample, bool):
        expected: tuple[type, ...] = (bool,)
    elif isinstance(sample, float):
        expected = (int, float)
    elif isinstance(sample, int):
        expected = (int,)
    elif isinstance(sample, Mapping):
        expected = (dict,)
    else:
        expected = (type(sample),)
    if isinstance(raw, bool) and bool not in expected:
        expected = ()
    if not isinstance(raw, expected):
        raise TypeError(f"expected a {type(sample).__name__}, got {type(raw).__name__}")


_FIELDS: dict[type, dict[str, StateField[Any]]] = {}


class StatefulEmulator(Emulator):
    """An emulator whose ``reset``, ``dump_state`` and ``load_state`` come from its fields.

    Subclasses declare :class:`StateField` class attributes and write ``handle``
    and ``client_settings``. ``__init__`` seeds every field; a subclass that needs
    attributes before seeding (a contract a seed depends on) sets them first,
    then calls ``super().__init__()``.
    """

    def __init__(self) -> None:
        self.reset()

    @classmethod
    def state_fields(cls) -> dict[str, StateField[Any]]:
        """Every declared field by name, base classes' first, in declaration order."""
        fields = _FIELDS.get(cls)
        if fields is None:  # read once per class: dump_state runs on every request
            fields = {}
            for klass in reversed(cls.__mro__):
                for name, value in vars(klass).items():
                    if isinstance(value, StateField):
                        fields[name] = value
            _FIELDS[cls] = fields
        return fields

    def reset(self) -> None:
        """Every field back to its seed, then :meth:`rebuild`."""
        for name, field in self.state_fields().items():
            setattr(self, name, field.seed(self))
        self.rebuild()

    def dump_state(self) -> dict[str, Any]:
        """Every kept field, JSON-ready (the live values: serialise before changing them)."""
        return {name: field.dump(getattr(self, name)) for name, field in self._kept()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`dump_state`; StateError, changing nothing, if any field is refused.

        Keys no field declares are ignored; scratch (``kept=False``) fields keep
        their values.
        """
        if not isinstance(state, Mapping):
            raise StateError(f"{self.platform} state must be an object, not {type(state).__name__}")
        values: dict[str, Any] = {}
        for name, field in self._kept():
            if name not in state:
                if field.required:
                    raise StateError(f"{self.platform} state has no {name!r}")
                values[name] = field.seed(self)
                continue
            try:
                values[name] = field.load(state[name], self)
            except (TypeError, ValueError, KeyError, AttributeError) as error:
                raise StateError(f"{self.platform} state {name!r}: {error}") from None
        for name, value in values.items():
            setattr(self, name, value)
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute what derives from the state (an index); after every reset and load."""

    def _kept(self) -> Iterator[tuple[str, StateField[Any]]]:
        return ((n, f) for n, f in self.state_fields().items() if f.kept)
