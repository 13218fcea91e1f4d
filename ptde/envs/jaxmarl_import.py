"""Importing one JaxMARL env without the rest of JaxMARL."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types


class _DeferredPackage(types.ModuleType):
    """A jaxmarl package whose own `__init__` runs only when something asks it for a name."""

    def __getattr__(self, name: str):
        spec = self.__dict__["__spec__"]
        if self.__dict__.get("_ptde_initialised") or name.startswith("__"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        self._ptde_initialised = True
        spec.loader.exec_module(self)  # the real __init__, into this module: its submodules stay
        return getattr(self, name)


def import_smax_alone() -> types.ModuleType:
    """Import `jaxmarl.environments.smax` without running jaxmarl's package `__init__`s first.

    Those import every env JaxMARL ships (STORM, Overcooked, coin game, JaxNav, MPE, Hanabi, and
    matplotlib): 6 of the 14 s it takes to start a run on this machine, paid again by every run,
    test and sweep job. SMAX needs only its own subpackage, `multi_agent_env` and `spaces`. So the
    two parents are registered as packages whose `__init__` is deferred until a name of theirs is
    read (`jaxmarl.make`, `from jaxmarl.environments import SMAX`); then it runs as usual.
    """
    if "jaxmarl" not in sys.modules:
        parent = None
        for name in ("jaxmarl", "jaxmarl.environments"):
            spec = importlib.util.find_spec(name, None if parent is None else parent.__path__)
            if spec is None:
                raise ModuleNotFoundError("SMAX needs jaxmarl: `make install` installs it", name=name)
            package = _DeferredPackage(name)
            package.__spec__, package.__loader__ = spec, spec.loader
            package.__path__, package.__file__ = list(spec.submodule_search_locations), spec.origin
            package.__package__ = name
            sys.modules[name] = package
            if parent is not None:
                parent.__dict__["environments"] = package
            parent = package
    return importlib.import_module("jaxmarl.environments.smax")


class _DropQuietBackendFailures(logging.Filter):
    """Drops jax's INFO records of an optional backend (TPU) it could not start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and record.getMessage().startswith("Unable to initialize backend"))


def quiet_jax_backend_probe() -> None:
    """Keep jax's "Unable to initialize backend 'tpu': ... libtpu.so" off the console.

    jax tries its optional backends on every machine and logs the ones that fail "quietly" at INFO;
    it is printed only because Hydra sets the root logger to INFO, once per run, with nothing in it
    a user could act on (SMAX runs on the CPU backend). A backend asked for by JAX_PLATFORMS still
    fails loudly, and jax's warnings are untouched.
    """
    logger = logging.getLogger("jax._src.xla_bridge")
    if not any(isinstance(f, _DropQuietBackendFailures) for f in logger.filters):
        logger.addFilter(_DropQuietBackendFailures())
