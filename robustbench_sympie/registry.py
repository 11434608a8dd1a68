"""A small generic registry reused for enhancers, models, datasets and corruptions.

Built-in entries live in modules that are imported lazily on first use (so that
``run_suite --help`` never imports torch), and third parties add entries through
Python entry points without touching this package::

    # in the plugin's pyproject.toml
    [project.entry-points."robustbench_sympie.enhancers"]
    my_enhancer = "my_pkg.enhancers:MyEnhancer"

An entry point may name a factory (registered under the entry point's name) or a
module (imported for its ``@register_...`` side effects).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import threading
import warnings
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Factory = Callable[..., Any]

__all__ = ["Registry", "UnknownNameError", "RegistryError"]


class RegistryError(RuntimeError):
    """A registry could not be populated (for instance, a broken plugin)."""


class UnknownNameError(KeyError):
    """Raised for a name that no entry of the registry matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
        self.kind, self.name, self.known, self.suggestion = kind, name, known, (close[0] if close else None)
        super().__init__(f"Unknown {kind} {name!r}.{hint} Known {kind}s: {listing}")

    def __str__(self) -> str:  # KeyError quotes its message; we want it verbatim
        return str(self.args[0])


class Registry(Generic[T]):
    """Name -> factory mapping with lazy built-ins, entry-point plugins and did-you-mean errors."""

    def __init__(self, kind: str, entry_point_group: str, builtin_modules: Iterable[str] = ()) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._builtin_modules = tuple(builtin_modules)
        self._factories: dict[str, Factory] = {}
        self._sources: dict[str, str] = {}
        self._loaded = False
        self._loading = False
        #: entry-point name -> why its plugin failed to load (reported on lookup, never silently dropped)
        self.broken: dict[str, str] = {}
        self._lock = threading.RLock()

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str | None = None, *, overwrite: bool = False) -> Callable[[Factory], Factory]:
        """Decorator registering a class or function under ``name`` (default: its ``name`` or ``__name__``)."""

        def decorator(factory: Factory) -> Factory:
            key = name or getattr(factory, "name", None) or factory.__name__
            self.add(key, factory, overwrite=overwrite)
            return factory

        return decorator

    def add(self, name: str, factory: Factory, *, overwrite: bool = False, source: str | None = None) -> None:
        """Register ``factory`` under ``name``; refuses silent replacement unless ``overwrite``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")
        with self._lock:
            if name in self._factories and not overwrite and self._factories[name] is not factory:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered (by {self._sources[name]}); "
                    "pass overwrite=True to replace it"
                )
            self._factories[name] = factory
            self._sources[name] = source or getattr(factory, "__module__", "?")

    # -- lookup -------------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        """Import the built-in modules and the plugins once.

        A built-in module that fails to import raises on every lookup (the registry is not marked loaded). A plugin
        that fails is reported by name in a warning, recorded in :attr:`broken` (looking it up raises
        :class:`RegistryError` with the cause) and skipped: the other entries stay available.
        """
        with self._lock:
            if self._loaded or self._loading:
                return
            self._loading = True  # built-in modules register through this registry while we import them
            try:
                for module in self._builtin_modules:
                    importlib.import_module(module)
                self._load_entry_points()
                self._loaded = True
            finally:
                self._loading = False

    def _load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=self.entry_point_group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin is reported by name, never takes the others down
                message = (f"plugin entry point {ep.name!r} = {ep.value!r} in group {self.entry_point_group!r} "
                           f"failed to load: {type(exc).__name__}: {exc}")
                self.broken[ep.name] = message
                warnings.warn(f"{message}; {self.kind} {ep.name!r} is unavailable", RuntimeWarning, stacklevel=4)
                continue
            if inspect.ismodule(obj):
                continue  # the module registered its entries on import
            if ep.name not in self._factories:
                self.add(ep.name, obj, source=f"entry point {ep.value}")

    def names(self) -> list[str]:
        """Sorted list of registered names (built-ins and plugins)."""
        self._ensure_loaded()
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._factories

    def get(self, name: str) -> Factory:
        """The factory registered under ``name``; :class:`UnknownNameError` otherwise."""
        self._ensure_loaded()
        try:
            return self._factories[name]
        except KeyError:
            if name in self.broken:
                raise RegistryError(f"{self.kind} {name!r} is unavailable: {self.broken[name]}") from None
            raise UnknownNameError(self.kind, name, self._factories) from None

    def source(self, name: str) -> str:
        """Where ``name`` was registered from (module or entry point)."""
        self.get(name)
        return self._sources[name]

    def create(self, name: str, **kwargs: Any) -> T:
        """Instantiate the entry ``name`` with keyword arguments."""
        return self.get(name)(**kwargs)
