"""Global-information modules of PTDE (filled in by the PTDE-core work)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ptde.envs.base import EnvInfo


def build_global_info(variant: dict[str, Any], info: EnvInfo, input_dim: int) -> nn.Module | None:
    name = variant["name"]
    if name == "none":
        return None
    raise ValueError(f"unknown variant {name!r}; valid variants: none")
