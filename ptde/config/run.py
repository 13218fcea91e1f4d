"""The schema of `ptde.train`'s config (`conf/config.yaml`) and of its env-independent groups,
registered with Hydra by `register_configs`. Env schemas live beside their envs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from ptde import plugins
from ptde.config.choices import LoggerKind, VariantKind, WandbMode
from ptde.registry import load


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
    # Upper bound on GIU/GIP's σ² (None: none, as in the authors' code). Their σ² = exp(head) has
    # no ceiling, and on learning to rank the head's output grew past exp's range (docs/ptde.md).
    var_ceiling: float | None = None
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
    # the update's arithmetic (Lightning's names): bf16-mixed | 32-true (bf16 autocast of the networks'
    # forward passes; Q heads, mixer, targets, loss and optimiser in fp32; ptde/learners/precision.py).
    # bf16-mixed by default since the parity campaign (benchmarks/README.md: QMIX_GIP 3m 200k, 3 seeds,
    # same learning at ~0.6 of the stage-1 time); a CPU without native bf16 runs 32-true (one log line).
    precision: str = "bf16-mixed"
    torch_threads: int = 0  # 0 keeps torch's default
    # true: glibc's malloc keeps what the process frees for its next allocations instead of handing it
    # back to the kernel (ptde/process_memory.py: -12% CPU time of a QMIX run, the process keeps its
    # peak memory); how a run runs, not what it learns, so a resume may change it
    keep_freed_memory: bool = True
    # true: the agents' GRU runs its update-time loop in C++ (ptde/nn/csrc/ragged_gru.cpp, compiled with
    # g++ at first use and cached; about half the time of the Python loop under bf16); without a
    # compiler, the Python loop (one log line). The two agree to float rounding, not bit for bit, so a
    # resume keeps the run's setting. false: the Python loop (ptde/nn/ragged_gru.py).
    fused_gru: bool = True
    # true: the checkpoints keep the replay buffer, so a resumed off-policy run continues exactly as
    # the uninterrupted run (bit for bit on CPU). Kept beside them in checkpoints/replay/, each episode
    # written once: a checkpoint adds the episodes inserted since the previous one (ptde.data.replay_store).
    # false: nothing of the replay is saved and a resumed run refills the buffer first (same state, not
    # the same trajectory). May change on resume.
    save_buffer: bool = True
    # caps an off-policy learner's batch (episodes per update, and so its warm-up before the first
    # update) below algo.batch_size; null: the algo's. The smoke switch sets it (conf/trainer/smoke.yaml).
    max_batch_episodes: int | None = None


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
    for name, learner in plugins.LEARNERS.items():  # schema/algo/<algo.learner>
        cs.store(group="schema/algo", name=name, node=load(learner.schema))
    for key, env in plugins.ENVS.items():  # schema/env/<env.family> (smac/smax and smac/sc2 share smac)
        cs.store(group="schema/env", name=key.split("/")[0], node=load(env.schema))
    cs.store(group="schema/variant", name="variant", node=VariantConfig)
    cs.store(group="schema/logger", name="logger", node=LoggerConfig)
    cs.store(group="schema/trainer", name="trainer", node=TrainerConfig)
