"""Start-up: marshmallow's internationalised e-mail patterns compile on first use.

marshmallow 4.3 made ``validate.Email`` accept internationalised domains; its two
class-level patterns now hold ``[...\\u00a1-\\uffff...]`` ranges under
``re.IGNORECASE``, and CPython compiles such a range by case-folding each of its
65,000 characters: about 40 ms at import on CPython 3.11, over a third of
``cancelkit translate``. cancelkit never validates an e-mail address.

:func:`install` adds an import hook that runs the body of ``marshmallow.validate``
(and nothing else) with ``re.compile`` deferring exactly those patterns: each is
compiled the first time it is used, so ``validate.Email`` still works as
documented. Any other pattern compiles at once, as usual. If marshmallow changes,
the hook simply finds nothing to defer.
"""

from __future__ import annotations

import importlib.machinery
import re
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

#: The module whose import is eased, and the text that marks a pattern worth deferring.
TARGET = "marshmallow.validate"
_COSTLY = "\u00a1-\uffff"


class DeferredPattern:
    """Stands for ``re.compile(pattern, flags)`` and compiles on first attribute use."""

    # ABCMeta reads this off every class attribute; answering it must not compile.
    __isabstractmethod__ = False

    def __init__(self, pattern: str, flags: int) -> None:
        self._source = (pattern, flags)
        self._compiled: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def compiled(self) -> re.Pattern[str]:
        """The real pattern, compiled now if it was not yet."""
        with self._lock:
            if self._compiled is None:
                self._compiled = re.compile(*self._source)
            return self._compiled

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled(), name)

    def __repr__(self) -> str:
        state = "compiled" if self._compiled is not None else "not compiled yet"
        return f"<DeferredPattern {self._source[0][:30]!r}... ({state})>"


def _deferring_compile(pattern: Any, flags: int = 0) -> Any:
    if isinstance(pattern, str) and _COSTLY in pattern:
        return DeferredPattern(pattern, flags)
    return _real_compile(pattern, flags)


_real_compile = re.compile


class _Loader:
    """The real loader, with ``exec_module`` run under the deferring ``re.compile``."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, ... as before
        return getattr(self._wrapped, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._wrapped.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import lock for this module is held; the swap lasts only its body.
        re.compile = _deferring_compile
        try:
            self._wrapped.exec_module(module)
        finally:
            re.compile = _real_compile


class _Finder:
    """A one-shot meta path finder for :data:`TARGET` (plain class: importlib.abc is slow)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)  # one use; and lets the real finders answer below
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = cast("Loader", _Loader(spec.loader))
        return spec


def install() -> None:
    """Ease the next import of marshmallow.validate (nothing to do once it is loaded)."""
    if TARGET in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
