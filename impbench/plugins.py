"""The plugin manager: loads ``impbench`` entry points lazily and once.

``IMPBENCH_LOAD_PLUGINS`` (a comma list of entry-point names) restricts which entry points
load; set to the empty string it loads none. Built-in baselines are registered through the
same hook as external plugins.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass

import pluggy

from . import hookspecs
from .errors import ImpbenchError
from .imputer import Imputer


@dataclass(frozen=True)
class ImputerInfo:
    """A registered imputer: its class and the distribution that provides it."""

    cls: type[Imputer]
    distribution: str
    version: str


_pm: pluggy.PluginManager | None = None
_imputers: dict[str, ImputerInfo] | None = None


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = os.environ.get("IMPBENCH_LOAD_PLUGINS")
    names = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        if names is not None and ep.name not in names:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        module = ep.load()
        pm.register(module, name=ep.name)
        dist = getattr(ep, "dist", None)
        if dist is not None:
            pm._impbench_dists[ep.name] = (dist.metadata["Name"], dist.version)  # type: ignore[attr-defined]


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        pm._impbench_dists = {}  # type: ignore[attr-defined]
        from . import baselines

        pm.register(baselines, name="impbench.baselines")
        _load_entry_points(pm)
        _pm = pm
    return _pm


def register_plugin(module: object, name: str, distribution: str = "", version: str = "") -> None:
    """Register a plugin module by hand (tests, notebooks); clears the imputer cache."""
    global _imputers
    pm = get_plugin_manager()
    if pm.get_plugin(name) is None:
        pm.register(module, name=name)
        pm._impbench_dists[name] = (distribution or name, version)  # type: ignore[attr-defined]
    _imputers = None


def reset() -> None:
    """Forget the plugin manager (tests use this after changing the environment)."""
    global _pm, _imputers
    _pm = None
    _imputers = None


def get_imputers() -> dict[str, ImputerInfo]:
    """All registered imputers by name, in registration order."""
    global _imputers
    if _imputers is None:
        pm = get_plugin_manager()
        found: dict[str, ImputerInfo] = {}
        from . import __version__

        for plugin in pm.get_plugins():
            plugin_name = pm.get_name(plugin)
            dist, version = pm._impbench_dists.get(plugin_name, ("impbench", __version__))  # type: ignore[attr-defined]

            def register(cls: type[Imputer], _dist=dist, _version=version) -> None:
                if not (isinstance(cls, type) and issubclass(cls, Imputer)):
                    raise TypeError(f"register() takes an Imputer subclass, got {cls!r}")
                if cls.name in found and found[cls.name].cls is not cls:
                    raise ImpbenchError(f"two plugins register an imputer named {cls.name!r}")
                found[cls.name] = ImputerInfo(cls, _dist, _version)

            hook = pm.subset_hook_caller("register_imputers", remove_plugins=[p for p in pm.get_plugins() if p is not plugin])
            hook(register=register)
        _imputers = found
    return _imputers


def get_imputer(name: str) -> type[Imputer]:
    """The imputer class registered as ``name``; ``ImpbenchError`` listing valid names if none."""
    imputers = get_imputers()
    if name not in imputers:
        raise ImpbenchError(f"unknown imputer {name!r}; available: {', '.join(imputers) or '(none)'}")
    return imputers[name].cls
