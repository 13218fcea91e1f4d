"""The schema of `ptde.train`'s config (`conf/config.yaml`) and of its env-independent groups,
registered with Hydra by `register_configs`. Env schemas live beside their envs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from ptde.config.algos import COPAConfig, CSRLConfig, CTDSConfig, MAPPOConfig, ValueDecompositionConfig
from ptde.config.choices import LoggerKind, VariantKind, WandbMode
from ptde.envs.football import GRFEnvConfig
from ptde.envs.ranking import LTREnvConfig
from ptde.envs.smac import SMACEnvConfig


# --------------------------------------------------------------------------- variant
@dataclass
class DistillConfig:
    """Stage 2: offline distillation of the teacher's mu into a local-input student."""

    teacher_episodes: int = 800
    teacher_epsilon: float = 0.05
    student_hidden_dim: int = 64
    lr: float = 1e-4
    batch_size: int = 1000
    grad_norm_clip: float = 10.0
    val_fraction: float = 0.2
    max_steps: int = 40_000
    val_interval: int = 500  # steps between validation passes
    patience: int = 10  # validation passes without improvement before stopping
    # Execution noise of the student: z = mu'(o_i) + N(0, var_floor), as the authors' code adds it.
    # null (default): as its teacher acts (a value-decomposition GIU/GIP teacher acts on its sampled
    # z, so its student gets the noise; MAPPO's acts on mu, so its student none); true / false: always
    # / never. Evidence for the default: README "Results" (3m: the students with and without it).
    student_noise: bool | None = None


@dataclass
class VariantConfig:
    """How agents see global information: none (CTDE), giu (shared) or gip (personalised)."""

    name: VariantKind = VariantKind.none
    z_dim: int = 64
    hyper_hidden_dim: int = 64
    var_floor: float = 0.01
    distill: DistillConfig = field(default_factory=DistillConfig)


# --------------------------------------------------------------------------- logger
@dataclass
class LoggerConfig:
    """The CSV log is always written; `name` adds wandb (or nothing)."""

    name: LoggerKind = LoggerKind.wandb
    project: str = "ptde"
    entity: str | None = None
    mode: WandbMode = WandbMode.auto
    tags: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- trainer
@dataclass
class TrainerConfig:
    max_env_steps: int = 2_000_000
    test_interval: int = 10_000  # env steps between greedy test phases
    test_episodes: int = 32
    log_interval: int = 10_000  # env steps between training-metric rows
    checkpoint_interval: int = 200_000  # env steps between periodic checkpoints
    progress_bar: bool = True
    accelerator: str = "cpu"  # torch device for the learner: cpu | cuda
    # the update's arithmetic (Lightning's names): 32-true | bf16-mixed (bf16 autocast of the networks'
    # forward passes; Q heads, mixer, targets, loss and optimiser in fp32; ptde/learners/precision.py)
    precision: str = "32-true"
    torch_threads: int = 0  # 0 keeps torch's default
    # true: the checkpoints keep the replay buffer, so a resumed off-policy run continues exactly as
    # the uninterrupted run (bit for bit on CPU). Kept beside them in checkpoints/replay/, each episode
    # written once: a checkpoint adds the episodes inserted since the previous one (ptde.data.replay_store).
    # false: nothing of the replay is saved and a resumed run refills the buffer first (same state, not
    # the same trajectory). May change on resume.
    save_buffer: bool = True


# --------------------------------------------------------------------------- top level
@dataclass
class Config:
    algo: Any = MISSING
    env: Any = MISSING
    variant: VariantConfig = MISSING
    logger: LoggerConfig = MISSING
    trainer: TrainerConfig = MISSING
    seed: int = 0
    stage: str = "all"  # 1 | 2 | all
    teacher: str | None = None  # run folder or checkpoint, for stage=2
    # auto: continue this run folder if it already holds a checkpoint (a requeued Slurm job, a
    # re-run with the same hydra.run.dir / sweep dir); true: the newest unfinished run of this
    # config under outputs/; a run folder or .ckpt: that one; false: always start over
    resume: Any = "auto"


def register_configs() -> None:
    """Register the schemas; called once before Hydra composes."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="schema/algo", name="value_decomposition", node=ValueDecompositionConfig)
    cs.store(group="schema/algo", name="ctds", node=CTDSConfig)
    cs.store(group="schema/algo", name="copa", node=COPAConfig)
    cs.store(group="schema/algo", name="csrl", node=CSRLConfig)
    cs.store(group="schema/algo", name="mappo", node=MAPPOConfig)
    cs.store(group="schema/env", name="smac", node=SMACEnvConfig)
    cs.store(group="schema/env", name="ltr", node=LTREnvConfig)
    cs.store(group="schema/env", name="grf", node=GRFEnvConfig)
    cs.store(group="schema/variant", name="variant", node=VariantConfig)
    cs.store(group="schema/logger", name="logger", node=LoggerConfig)
    cs.store(group="schema/trainer", name="trainer", node=TrainerConfig)
