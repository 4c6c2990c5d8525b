"""The plugin manager: loads ``impbench`` entry points lazily and once.

Nothing is imported until the first call that needs the registry (``get_imputers``,
``get_imputer``, ``get_plugin_manager``); then every entry point of the group ``impbench`` is
loaded once per process. ``IMPBENCH_LOAD_PLUGINS`` (a comma list of entry-point or
distribution names) restricts which entry points load; set to the empty string it loads none.
The built-in baselines (``impbench.imputers.baselines``) are registered through the same hook as
external plugins and are always present.

An entry point that fails to import does not stop the harness: it is skipped, and the error is
kept in ``load_errors()`` (``impbench plugins`` shows it, ``impbench run`` warns).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass

import pluggy

from impbench import __version__
from impbench.imputers import hookspecs
from impbench.errors import ImpbenchError
from impbench.imputers import baselines
from impbench.imputers.base import Imputer

#: Environment variable restricting which entry points load.
LOAD_PLUGINS_ENV = "IMPBENCH_LOAD_PLUGINS"
#: Plugin name of the built-in baselines module.
BUILTIN = "impbench.imputers.baselines"


@dataclass(frozen=True)
class ImputerInfo:
    """A registered imputer: its class, the plugin (entry point) and distribution providing it."""

    cls: type[Imputer]
    plugin: str
    distribution: str
    version: str


_pm: pluggy.PluginManager | None = None
_imputers: dict[str, ImputerInfo] | None = None
#: plugin name -> (distribution, version)
_dists: dict[str, tuple[str, str]] = {}
#: entry-point name -> one-line error of a plugin that failed to load
_load_errors: dict[str, str] = {}


def _wanted() -> set[str] | None:
    """Names allowed by ``IMPBENCH_LOAD_PLUGINS``; None when the variable is unset."""
    value = os.environ.get(LOAD_PLUGINS_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_entry_points(pm: pluggy.PluginManager, only: str | None = None) -> None:
    """Register every wanted entry point not loaded yet (``only``: just the one of that name,
    wanted or not)."""
    wanted = _wanted() if only is None else {only}
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else ep.name
        if wanted is not None and ep.name not in wanted and dist_name not in wanted:
            continue
        if pm.get_plugin(ep.name) is not None or ep.name in _load_errors:
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the harness down
            _load_errors[ep.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            continue
        pm.register(module, name=ep.name)
        _dists[ep.name] = (dist_name, dist.version if dist is not None else "")


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built (and its entry points loaded) on first use."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        pm.register(baselines, name=BUILTIN)
        _dists[BUILTIN] = ("impbench", __version__)
        _load_entry_points(pm)
        _pm = pm
    return _pm


def register_plugin(module: object, name: str, distribution: str = "", version: str = "") -> None:
    """Register a plugin module (or any object with a ``register_imputers`` hookimpl) by hand.

    For tests and notebooks: the result is as if an entry point ``name`` had loaded it.
    Registering the same object under the same name again does nothing; another object under a
    name in use raises ``ImpbenchError``.
    """
    global _imputers
    pm = get_plugin_manager()
    existing = pm.get_plugin(name)
    if existing is module:
        return
    if existing is not None:
        raise ImpbenchError(f"a plugin named {name!r} is already registered")
    pm.register(module, name=name)
    _dists[name] = (distribution or name, version)
    _imputers = None


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered under ``name`` (no-op if there is none)."""
    global _imputers
    pm = get_plugin_manager()
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    _dists.pop(name, None)
    _imputers = None


def reset() -> None:
    """Forget the plugin manager (tests use this after changing the environment)."""
    global _pm, _imputers
    _pm = None
    _imputers = None
    _dists.clear()
    _load_errors.clear()


def load_errors() -> dict[str, str]:
    """Entry points that failed to load: name -> one-line error."""
    get_plugin_manager()
    return dict(_load_errors)


def get_imputers() -> dict[str, ImputerInfo]:
    """All registered imputers by name: the built-in ones first, then plugins in load order."""
    global _imputers
    if _imputers is None:
        pm = get_plugin_manager()
        found: dict[str, ImputerInfo] = {}
        plugins = pm.get_plugins()
        order = sorted(plugins, key=lambda p: pm.get_name(p) != BUILTIN)
        for plugin in order:
            plugin_name = pm.get_name(plugin)
            dist, version = _dists.get(plugin_name, (plugin_name, ""))

            def register(cls: type[Imputer], _plugin=plugin_name, _dist=dist, _version=version) -> None:
                if not (isinstance(cls, type) and issubclass(cls, Imputer)):
                    raise ImpbenchError(f"plugin {_plugin!r}: register() takes an Imputer subclass, got {cls!r}")
                name = getattr(cls, "name", None)
                if not isinstance(name, str) or not name:
                    raise ImpbenchError(f"plugin {_plugin!r}: imputer class {cls.__qualname__} has no name")
                if name in found and found[name].cls is not cls:
                    raise ImpbenchError(
                        f"two plugins register an imputer named {name!r}: "
                        f"{found[name].plugin!r} and {_plugin!r}"
                    )
                found[name] = ImputerInfo(cls, _plugin, _dist, _version)

            others = [p for p in plugins if p is not plugin]
            pm.subset_hook_caller("register_imputers", remove_plugins=others)(register=register)
        _imputers = found
    return _imputers


def get_imputer(name: str) -> type[Imputer]:
    """The imputer class registered as ``name``; ``ImpbenchError`` listing valid names if none."""
    imputers = get_imputers()
    if name not in imputers:
        raise ImpbenchError(f"unknown imputer {name!r}; available: {', '.join(imputers) or '(none)'}")
    return imputers[name].cls


# ---------------------------------------------------------------------------- naming a class across processes
@dataclass(frozen=True)
class ImputerRef:
    """How another process finds a registered imputer's class without pickling it: its name, the
    plugin (entry point) that registers it, and its module and qualified name."""

    name: str
    plugin: str
    module: str
    qualname: str


def imputer_ref(name: str) -> ImputerRef:
    """The ``ImputerRef`` of the imputer registered as ``name`` (``ImpbenchError`` if none)."""
    cls = get_imputer(name)
    return ImputerRef(name, get_imputers()[name].plugin, cls.__module__, cls.__qualname__)


def _importable(ref: ImputerRef) -> type[Imputer] | None:
    """The class at ``module:qualname`` when it is importable and is the imputer ``ref.name``."""
    if "<" in ref.qualname:  # built in a function (``<locals>``): not reachable by name
        return None
    try:
        obj: object = importlib.import_module(ref.module)
        for part in ref.qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    if isinstance(obj, type) and issubclass(obj, Imputer) and getattr(obj, "name", None) == ref.name:
        return obj
    return None


def resolve_imputer(ref: ImputerRef) -> type[Imputer]:
    """The class ``ref`` names, in this process: imported by module and qualified name when it
    lives there, else from the registry, loading the plugin's entry point if needed (a plugin
    may build its classes in a function). ``ImpbenchError`` when neither finds it."""
    cls = _importable(ref)
    if cls is not None:
        return cls
    global _imputers
    info = get_imputers().get(ref.name)
    if info is None or info.plugin != ref.plugin:
        _load_entry_points(get_plugin_manager(), only=ref.plugin)
        _imputers = None
        info = get_imputers().get(ref.name)
    if info is None or info.plugin != ref.plugin:
        raise ImpbenchError(
            f"imputer {ref.name!r}: its class cannot be found in this process ({ref.module}:{ref.qualname} "
            f"is not importable, and no entry point {ref.plugin!r} registers it)"
        )
    return info.cls
