"""One registry style for every swappable piece (learners, env adapters, mixers, variants): a dict
from the name the config gives to what builds it, looked up through `choose`, which refuses an
unknown name with the valid ones. An entry may be a "module:attribute" string, imported only when
chosen (env adapters pull in JAX or a game engine, learners import each other)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from ptde.errors import ConfigError


def choose(registry: Mapping[str, Any], name: str, key: str) -> Any:
    """The entry `name` of `registry` (a "module:attribute" string is imported); `key` is the
    config key that chose it, for the error message."""
    if name not in registry:
        raise ConfigError(f"{key}={name!r} is not valid; valid choices: {', '.join(sorted(registry))}")
    entry = registry[name]
    return load(entry) if isinstance(entry, str) else entry


def load(entry: str) -> Any:
    """The object a "module:attribute" string names, imported now."""
    module, attr = entry.split(":")
    return getattr(importlib.import_module(module), attr)


class ChoiceEnum(str, Enum):
    """An Enum whose str() is its value, so `${variant.name}` interpolates as `gip`; as a config field's
    type, OmegaConf's error on a wrong value lists the valid names."""

    def __str__(self) -> str:
        return self.value


def choice_enum(name: str, names: Iterable[str], module: str) -> type[ChoiceEnum]:
    """The ChoiceEnum of a registry's names (`ptde.plugins`), so a config field and the registry it
    chooses from cannot disagree. `module`: where the Enum is defined (for its repr and pickling)."""
    return ChoiceEnum(name, [(n, n) for n in names], module=module)  # type: ignore[return-value]
