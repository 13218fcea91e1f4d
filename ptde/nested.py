"""Nested config dicts as every layer reads them: dotted keys (`flatten`) and attribute access
(`ConfigView`). A ground-floor module: env adapters, loggers and the experiment all read configs
through it, so none of them imports `ptde.config` (which imports the env schemas) for it."""

from __future__ import annotations

from typing import Any


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: the keys a command line overrides and wandb's config shows."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, key + ".")
        else:
            out[key] = v
    return out


class ConfigView:
    """Attribute access over a plain config dict (env adapters read `cfg.name`, `cfg.family`...)."""

    def __init__(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, ConfigView(v) if isinstance(v, dict) else v)
