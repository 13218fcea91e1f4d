"""What every stage-1 learner shares: run counters, the metric queue, checkpoint round trips.

The value-decomposition learners and MAPPO subclass `StageOneLearner`, so progress counting,
training-metric logging and rebuilding from a checkpoint are one piece of code, not one per
algorithm (the env-interaction callback reads `counters` and `pending_metrics` of any learner).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import torch

from ptde.envs.base import EnvInfo
from ptde.nn.policy import DecentralizedAgentNetwork


@dataclass
class RunCounters:
    """Progress of a run in the units RL cares about; saved in every checkpoint."""

    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    last_target_update_episode: int = 0
    last_test_step: int = 0
    last_log_step: int = 0
    last_checkpoint_step: int = 0
    dropped_episodes: int = 0  # broken off by a crashed or hung env worker (not learned from)


class StageOneLearner(L.LightningModule):
    """A LightningModule with the surface `ptde.learners` documents (subclasses add the networks)."""

    # False: trains from whole episodes (`ptde.rollout.episodes`, replay); True: from step-based rollouts of
    # auto-reset envs (`ptde.rollout.steps`), collected by `StepInteractionCallback`
    collects_steps: bool = False

    def __init__(self, cfg: dict[str, Any], env_info: dict[str, Any]) -> None:
        """`cfg` is the run's resolved config as plain containers; it travels in checkpoints with
        `env_info` (`save_hyperparameters`), which is all `from_checkpoint_dict` needs to rebuild."""
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False  # each learner steps its own optimisers
        self.counters = RunCounters()
        self.pending_metrics: dict[str, list[float]] = {}
        self.algo = cfg["algo"]
        self.info = EnvInfo(**env_info)

    # ------------------------------------------------------------------ acting and PTDE stage 2
    # the `*_KD` actor: the acting network's agent body with the student in place of GIU/GIP
    decentralized_class: type[DecentralizedAgentNetwork] = DecentralizedAgentNetwork

    @property
    def acting_net(self) -> torch.nn.Module:
        """The network that acts (agent body plus the variant's GIU/GIP); subclasses name theirs.
        Its `forward(inputs, state, hidden, **acting_options())` returns (out, hidden, extras)."""
        raise NotImplementedError

    def acting_options(self) -> dict[str, Any]:
        """Keyword arguments of the acting network's forward when acting (none by default)."""
        return {}

    @property
    def acts_on_sampled_z(self) -> bool:
        """Whether a GIU/GIP teacher acts on its sampled z (the acting network's default) or on μ."""
        return bool(self.acting_options().get("sample_z", True))

    @property
    def global_info(self) -> torch.nn.Module | None:
        """The GIU/GIP module whose μ stage 2 distills (None for plain CTDE)."""
        return getattr(self.acting_net, "global_info", None)

    def decentralized_policy(self, student: torch.nn.Module, noise_var: float = 0.0) -> torch.nn.Module:
        """`*_KD` execution: this learner's agent network with the student in place of GIU/GIP."""
        return self.decentralized_class(self.acting_net.agent, student, noise_var).eval()

    def own_student(self) -> torch.nn.Module | None:
        """The decentralized policy a learner trains during stage 1 itself (CTDS), which plays the PRR
        comparison at the end of stage 1 and is the run's `*_KD` policy without a stage 2; None
        (the default): the student comes from stage 2."""
        return None

    @property
    def uses_state(self) -> bool:
        """GIU/GIP agents read the global state when acting (centralized execution)."""
        return self.acting_net.uses_state

    @torch.no_grad()
    def act(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None, state: torch.Tensor | None = None, **options: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of all agents: inputs [B, 1, n, d], state [B, 1, S] -> out [B, 1, n, A], hidden.
        `options` override `acting_options()` (e.g. `sample_z=False` for `ptde.evaluate z=mean`)."""
        out, hidden, _ = self.acting_net(inputs, state, hidden, **{**self.acting_options(), **options})
        return out, hidden

    # ------------------------------------------------------------------ training metrics
    def record(self, stats: dict[str, float]) -> None:
        """Queue training statistics; `pop_metrics` averages them at the next log row."""
        for k, v in stats.items():
            self.pending_metrics.setdefault(k, []).append(v)

    def pop_metrics(self) -> dict[str, float]:
        """Means of the training stats since the last call (logged every log_interval env steps)."""
        out = {k: sum(v) / len(v) for k, v in self.pending_metrics.items() if v}
        self.pending_metrics = {}
        return out

    def non_finite(self, what: str, check: str) -> FloatingPointError:
        """The error an update raises on a NaN or inf, before the parameters change: one wording for
        every learner, since `ptde.tools.campaign` tells such a failure (not retried) by it. `what`
        names the quantity and its value, `check` the settings to look at."""
        c = self.counters
        return FloatingPointError(
            f"non-finite {what} at update {c.updates + 1}, env step {c.env_steps}: the run stops before the "
            f"parameters change, so checkpoints/last.ckpt is the last good state. Check {check}."
        )

    @classmethod
    def from_checkpoint_dict(cls, ckpt: dict[str, Any]) -> StageOneLearner:
        """Rebuild from a checkpoint already read (`ptde.data.checkpoint.load_checkpoint`)."""
        hp = ckpt["hyper_parameters"]
        learner = cls(hp["cfg"], hp["env_info"])
        learner.load_state_dict(ckpt["state_dict"])
        learner.on_load_checkpoint(ckpt)
        return learner.eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ptde_counters"] = asdict(self.counters)
        # the stats queued since the last log row: a resumed run logs the same row as an uninterrupted one
        checkpoint["ptde_pending_metrics"] = {k: list(v) for k, v in self.pending_metrics.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.counters = RunCounters(**checkpoint.get("ptde_counters", {}))
        self.pending_metrics = {k: list(v) for k, v in checkpoint.get("ptde_pending_metrics", {}).items()}
