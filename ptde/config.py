"""Typed schemas for every Hydra config group.

Each group option in `conf/` starts from one of these dataclasses (its defaults list names
`/schema/<group>/<kind>`), so a misspelt key or a value of the wrong type fails while Hydra
composes the config, before any run folder exists. Choice-valued fields are Enums: OmegaConf's
error then lists the valid names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from ptde.envs.football import GRFEnvConfig
from ptde.envs.ranking import LTREnvConfig


class ChoiceEnum(str, Enum):
    """An Enum whose str() is its value, so `${variant.name}` interpolates as `gip`."""

    def __str__(self) -> str:
        return self.value


class Learner(ChoiceEnum):
    value_decomposition = "value_decomposition"
    mappo = "mappo"


class MixerKind(ChoiceEnum):
    vdn = "vdn"
    qmix = "qmix"
    qplex = "qplex"


class VariantKind(ChoiceEnum):
    none = "none"
    giu = "giu"
    gip = "gip"


class SMACBackend(ChoiceEnum):
    smax = "smax"
    sc2 = "sc2"


class LoggerKind(ChoiceEnum):
    wandb = "wandb"
    csv = "csv"
    none = "none"


class WandbMode(ChoiceEnum):
    auto = "auto"  # online when an API key is configured, else offline
    offline = "offline"
    online = "online"


# --------------------------------------------------------------------------- algo
@dataclass
class ValueDecompositionConfig:
    """PyMARL2 defaults; the paper's Table 7 values where it gives them."""

    name: str = MISSING  # qmix | vdn (the variant suffix is added from `variant.name`)
    learner: Learner = Learner.value_decomposition
    mixer: MixerKind = MixerKind.qmix
    # agent network
    rnn_hidden_dim: int = 64
    # mixer network (QMIX; QPLEX's weighted head uses hypernet_embed too)
    mixing_embed_dim: int = 32
    hypernet_embed: int = 64
    # QPLEX's duplex weights λ_i(s, a): attention heads and their extractors' width (PyMARL2's qplex.yaml)
    num_kernel: int = 4
    adv_hypernet_embed: int = 64
    # optimisation
    lr: float = 1e-3
    gamma: float = 0.99
    td_lambda: float = 0.6
    double_q: bool = True
    grad_norm_clip: float = 10.0
    batch_size: int = 128  # episodes per update
    buffer_size: int = 5000  # episodes
    target_update_interval: int = 200  # episodes between hard target updates
    # episodes per length-sorted chunk of an update (0 = the whole batch at once); only speed changes
    update_chunk: int = 32
    # exploration (epsilon-greedy, linear anneal over env steps)
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_time: int = 100_000


@dataclass
class MAPPOConfig:
    """MAPPO (Yu et al. 2021) with the SMAC defaults of its code (marlbenchmark/on-policy):
    recurrent actor and critic of width 64, Adam 5e-4 (eps 1e-5) for both, GAE(γ 0.99, λ 0.95),
    PPO clip 0.2 (also the value clip), 5 epochs of 1 minibatch per rollout, entropy bonus 0.01,
    Huber value loss (δ 10) on a normalised value (ValueNorm), gradient clip 10 for each network."""

    name: str = MISSING  # mappo (the variant suffix is added from `variant.name`)
    learner: Learner = Learner.mappo
    rnn_hidden_dim: int = 64  # actor
    critic_hidden_dim: int = 64
    lr: float = 5e-4  # actor
    critic_lr: float = 5e-4
    optim_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_param: float = 0.2
    ppo_epochs: int = 5
    num_mini_batch: int = 1  # minibatches of whole episodes per epoch
    entropy_coef: float = 0.01
    value_loss_coef: float = 1.0
    huber_delta: float = 10.0
    clipped_value_loss: bool = True
    value_norm: bool = True
    grad_norm_clip: float = 10.0
    # episodes per rollout: one collection of the parallel envs (mappo.yaml sets ${env.batch_size_run})
    batch_size: int = 8
    # The rollout's exploration knob, read by the env-interaction callback like the Q-learners' ε:
    # each agent's action is drawn from the policy with probability ε, else it is the policy's most
    # probable one. ε = 1 while training (on-policy PPO); tests and evaluation run with ε = 0.
    epsilon_start: float = 1.0
    epsilon_finish: float = 1.0
    epsilon_anneal_time: int = 1


# --------------------------------------------------------------------------- env
@dataclass
class SMACEnvConfig:
    """A StarCraft-style battle. `backend=smax` runs JaxMARL's SMAX (no game install)."""

    family: str = "smac"
    name: str = MISSING  # the map, e.g. 3m
    backend: SMACBackend = SMACBackend.smax
    episode_limit: int = MISSING  # SMAC's per-map limit
    batch_size_run: int = 8  # parallel environments while training (Table 7)
    # SMAX's reward is in [0, 2] (enemy health fraction + win bonus 1); x10 gives SMAC's
    # normalised scale of at most 20.
    reward_scale: float = 10.0
    walls_cause_death: bool = False  # SMAC has no deadly walls
    enemy_attack_mode: str = "closest"  # SMAX heuristic enemy: closest | random


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
    # The authors add Normal noise with variance var_floor to the student's mu at execution.
    student_noise: bool = False


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
    torch_threads: int = 0  # 0 keeps torch's default


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


def register_configs() -> None:
    """Register the schemas; called once before Hydra composes."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="schema/algo", name="value_decomposition", node=ValueDecompositionConfig)
    cs.store(group="schema/algo", name="mappo", node=MAPPOConfig)
    cs.store(group="schema/env", name="smac", node=SMACEnvConfig)
    cs.store(group="schema/env", name="ltr", node=LTREnvConfig)
    cs.store(group="schema/env", name="grf", node=GRFEnvConfig)
    cs.store(group="schema/variant", name="variant", node=VariantConfig)
    cs.store(group="schema/logger", name="logger", node=LoggerConfig)
    cs.store(group="schema/trainer", name="trainer", node=TrainerConfig)


# --------------------------------------------------------------------------- other entry points
class EvalMode(ChoiceEnum):
    centralized = "centralized"
    decentralized = "decentralized"


@dataclass
class EvaluateConfig:
    """`python -m ptde.evaluate checkpoint=<run folder or .ckpt> episodes=32`."""

    checkpoint: str = MISSING
    episodes: int = 32
    mode: EvalMode = EvalMode.centralized
    seed: int = 12345
    batch_size: int = 32  # parallel environments


@dataclass
class DistillEntryConfig:
    """`python -m ptde.distill teacher=<run folder or .ckpt>`: stage 2 on its own.

    Writes a new run folder under outputs/ (so distillation settings can be swept); the env,
    algo and variant come from the teacher, the distillation settings from `distill`.
    """

    teacher: str = MISSING
    seed: int = 0
    test_episodes: int = 32
    progress_bar: bool = True
    distill: DistillConfig = field(default_factory=DistillConfig)


def register_entry_configs() -> None:
    """Schemas of `ptde.evaluate` and `ptde.distill`."""
    cs = ConfigStore.instance()
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="distill_schema", node=DistillEntryConfig)
