"""Start-up costs the CLI does not pay: pydantic's plugin discovery and typer's pydantic
type adapters for values that need no conversion.

Both are measured by ``benchmarks/cli_startup.py`` and kept out by
``tests/e2e/test_cli_imports.py``:

- ``pydantic.plugin._loader`` imports ``importlib.metadata`` (and with it the ``email``
  package, ~20 ms here) as soon as the first model or type adapter is built, even when
  ``PYDANTIC_DISABLE_PLUGINS`` tells it to load none. The CLI loads no pydantic plugin
  (a plugin would see every value validated, codes and credentials included), so an
  equivalent module that finds none stands in for it.
- typer (0.2x) reads each command's signature twice (its parameters, then its callback's
  parameter names), evaluating every annotation each time: a fifth of ``airlock --help``,
  which builds every command. The first reading is kept and given again.
- typer (0.2x) converts every parameter of the command it runs through a pydantic
  ``TypeAdapter``, built on first use: importing pydantic and building the adapters costs
  more than the rest of ``airlock init``. A ``str``, ``bool`` or ``int`` parameter that
  already holds a value of its type (an ``int`` within its bounds), or holds none, is
  what the adapter would return; only other values (and every other kind of parameter)
  build the adapter.

Each replacement checks that the internals it relies on are there and otherwise leaves
typer or pydantic as they are (slower, never wrong).
"""

from __future__ import annotations

import os
import sys
import types
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec
from typing import Any

_LOADER = "pydantic.plugin._loader"


def without_pydantic_plugins() -> None:
    """Load no third-party pydantic plugins in this process (call before any model exists).

    A pydantic plugin sees every value validated, codes and credentials included; finding
    them also costs ~20 ms of start-up (``importlib.metadata``) on every command.
    """
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    if _LOADER not in sys.modules and not any(isinstance(f, _NoPlugins) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPlugins())


class _NoPlugins:
    """Imports, as ``pydantic.plugin._loader``, a module whose ``get_plugins`` finds none:
    what the real one answers under ``PYDANTIC_DISABLE_PLUGINS=__all__``, without first
    importing ``importlib.metadata``."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        return ModuleSpec(name, self) if name == _LOADER else None  # type: ignore[arg-type]

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        def get_plugins() -> Iterable[Any]:
            return ()

        module.get_plugins = get_plugins  # type: ignore[attr-defined]
        module.PYDANTIC_ENTRY_POINT_GROUP = "pydantic"  # type: ignore[attr-defined]


def lazy_typer_coercion() -> None:
    """Build typer's pydantic adapter for a parameter only for a value that needs it."""
    try:
        from typer import _coercion, core
    except ImportError:  # pragma: no cover - a typer without them converts as before
        return
    original: Any = getattr(core, "build_runtime_param", None)
    base: Any = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or getattr(original, "airlock_lazy", False):
        return

    @dataclass(frozen=True)
    class Deferred(base):  # type: ignore[misc]
        """Passes through a value the adapter would return unchanged; builds it otherwise."""

        descriptor: Any = None
        built: list[Any] = field(default_factory=list)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if _unchanged(self.descriptor, value):
                return value
            if not self.built:
                self.built.append(original(self.descriptor))
            return self.built[0]._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        if not _simple(descriptor):
            return original(descriptor)
        return Deferred(
            parameter_info=descriptor.parameter_info,
            annotation=descriptor.annotation,
            descriptor=descriptor,
        )

    build_runtime_param.airlock_lazy = True  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build_runtime_param)  # noqa: B010


def signatures_read_once() -> None:
    """Read each command function's parameters once, however often typer asks."""
    try:
        from typer import main
    except ImportError:  # pragma: no cover
        return
    original: Any = getattr(main, "get_params_from_function", None)
    if original is None or getattr(original, "airlock_once", False):
        return
    read: weakref.WeakKeyDictionary[Callable[..., Any], Any] = weakref.WeakKeyDictionary()

    def get_params_from_function(func: Callable[..., Any]) -> Any:
        # typer only reads the answer (names, annotations, defaults): it is shared.
        found = read.get(func)
        if found is None:
            found = read[func] = original(func)
        return found

    get_params_from_function.airlock_once = True  # type: ignore[attr-defined]
    setattr(main, "get_params_from_function", get_params_from_function)  # noqa: B010


def _simple(descriptor: Any) -> bool:
    """A str, bool or int parameter with no parser, choices, path or file (an int may have
    bounds: a value within them is returned unchanged, clamped or not)."""
    try:
        info = descriptor.parameter_info
        return (
            descriptor.annotation in (str, bool, int)
            and descriptor.file_annotation is None
            and getattr(info, "parser", None) is None
            and getattr(info, "click_type", None) is None
            and (descriptor.annotation is int or (info.min is None and info.max is None))
            and not descriptor.is_path
            and not descriptor.is_choice
        )
    except Exception:  # pragma: no cover - typer changed its descriptor: convert as before
        return False


def _unchanged(descriptor: Any, value: Any) -> bool:
    """Whether the adapter would return *value* itself."""
    if type(value) is not descriptor.annotation:
        return False
    if descriptor.annotation is not int:
        return True
    low, high = descriptor.parameter_info.min, descriptor.parameter_info.max
    return (low is None or value >= low) and (high is None or value <= high)
