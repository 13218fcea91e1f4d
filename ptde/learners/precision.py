"""The numeric precision of a learner's update (`trainer.precision`, Lightning's names).

`32-true`: everything in float32. `bf16-mixed`: the networks' forward passes of the update run under
bfloat16 autocast (the agents' GRU, the GIP/GIU embedding, the hypernetworks' matrix products),
while each agent's Q head, the mixer, the TD(λ) targets, the loss reduction and the optimiser stay
in float32: the expensive matrix products go at bf16 speed and the values the loss compares keep
float32 resolution (a bf16 Q of 16 is only resolved to 0.06). Acting and tests run in float32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch

from ptde.config.choices import PRECISIONS
from ptde.errors import ConfigError
from ptde.machine import cpu_has_bf16

log = logging.getLogger(__name__)


def resolve_precision(requested: str, device_type: str) -> str:
    """The precision a learner will use: `requested`, or 32-true (with one log line saying why)
    when bf16 is asked for on a CPU without native bf16."""
    if requested not in PRECISIONS:
        raise ConfigError(f"trainer.precision={requested!r}; valid choices: {', '.join(PRECISIONS)}")
    if requested == "bf16-mixed" and device_type == "cpu" and not cpu_has_bf16():
        log.warning("trainer.precision=bf16-mixed: this CPU has no native bf16 (avx512_bf16/amx_bf16); using 32-true")
        return "32-true"
    return requested


@contextlib.contextmanager
def update_autocast(precision: str, device_type: str) -> Iterator[None]:
    """The forward passes of an update under `precision` (see the module docstring)."""
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
        yield
