"""What a run's wandb run is called and how it runs: its group (the config without the seed: one
group is one table cell), job type (the stages it holds), tags, and online or offline."""

from __future__ import annotations

import hashlib
import json
import netrc
import os
from typing import Any

# keys that say how (or from where) a run runs, not what it learns: left out of its wandb group
GROUP_IGNORES = (
    "seed",
    "stage",
    "teacher",
    "resume",
    "logger.",
    "trainer.progress_bar",
    "trainer.torch_threads",
    "trainer.keep_freed_memory",
    "trainer.fused_gru",
)
GROUP_IGNORES += ("trainer.accelerator", "trainer.save_buffer")


def wandb_group(cfg: dict[str, Any]) -> str:
    """`qmix_gip_3m_<hash of the config without the seed>`: the seeds of one config, one group."""
    from ptde.config.resolved import run_label
    from ptde.nested import flatten

    kept = {k: v for k, v in flatten(cfg).items() if not k.startswith(GROUP_IGNORES)}
    digest = hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{run_label(cfg)}_{cfg['env']['name']}_{digest}"


def wandb_job_type(cfg: dict[str, Any]) -> str:
    """The stages the run holds: stage1, stage2 (distillation of a given teacher) or stage1+2."""
    stage = str(cfg["stage"])
    if stage == "all":
        return "stage1+2" if cfg["variant"]["name"] != "none" else "stage1"
    return f"stage{stage}"


def wandb_tags(cfg: dict[str, Any]) -> list[str]:
    env = f"{cfg['env']['family']}/{cfg['env']['name']}"
    own = [f"algo:{cfg['algo']['name']}", f"env:{env}", f"variant:{cfg['variant']['name']}"]
    return list(dict.fromkeys([*cfg["logger"]["tags"], *own]))


def wandb_logged_in() -> bool:
    """True when an API key is configured (env var or ~/.netrc); never touches the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(auth and auth[2])


def resolve_wandb_mode(mode: str) -> str:
    if mode == "auto":
        return "online" if wandb_logged_in() else "offline"
    return mode
