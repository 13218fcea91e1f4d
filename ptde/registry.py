"""One registry style for every swappable piece (learners, env adapters, mixers, variants): a dict
from the name the config gives to what builds it, looked up through `choose`, which refuses an
unknown name with the valid ones. An entry may be a "module:attribute" string, imported only when
chosen (env adapters pull in JAX or a game engine, learners import each other)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ptde.errors import ConfigError


def choose(registry: Mapping[str, Any], name: str, key: str) -> Any:
    """The entry `name` of `registry` (a "module:attribute" string is imported); `key` is the
    config key that chose it, for the error message."""
    if name not in registry:
        raise ConfigError(f"{key}={name!r} is not valid; valid choices: {', '.join(sorted(registry))}")
    entry = registry[name]
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry
