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
    ctds = "ctds"
    copa = "copa"
    csrl = "csrl"
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


class BufferDtype(ChoiceEnum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


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
    # storage type of the replay's obs and state (upcast to float32 when sampled): float16 halves them
    buffer_dtype: BufferDtype = BufferDtype.float32
    target_update_interval: int = 200  # episodes between hard target updates
    # episodes per length-sorted chunk of an update (0 = the whole batch at once); only speed changes
    update_chunk: int = 32
    # exploration (epsilon-greedy, linear anneal over env steps)
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_time: int = 100_000


@dataclass
class CTDSConfig(ValueDecompositionConfig):
    """CTDS (Zhao et al. 2022): a state-reading teacher trained by TD, a local student distilled alongside."""

    name: str = "ctds"
    learner: Learner = Learner.ctds
    distill_coef: float = 1.0  # weight of the student's Σ_i Σ_a (Q^S_i − Q^T_i)² next to the TD loss


@dataclass
class COPAConfig(ValueDecompositionConfig):
    """COPA (Liu et al. 2021): an attention coach sends strategies every `comm_interval` steps."""

    name: str = "copa"
    learner: Learner = Learner.copa
    coach_dim: int = 64  # coach hidden size = strategy size
    coach_heads: int = 4
    comm_interval: int = 4  # T: the coach speaks at steps 0, T, 2T, ...
    # adaptive communication at execution: resend z_i only if ||z_new - z_old|| > threshold (0: every T steps)
    comm_threshold: float = 0.0
    vi_coef: float = 0.001  # weight of the variational objective (marl-copa's vi_lambda default)


@dataclass
class CSRLConfig(ValueDecompositionConfig):
    """CSRL (Chen et al. 2022): a commander issues each agent specific information from the state."""

    name: str = "csrl"
    learner: Learner = Learner.csrl
    commander_dim: int = 64  # size of the specific information c_i
    commander_hyper_hidden: int = 64


@dataclass
class MAPPOConfig:
    """MAPPO (Yu et al. 2021) as marlbenchmark/on-policy runs it on SMAC. Every default is
    on-policy's (`onpolicy/config.py`, and where all its SMAC scripts set a value, the scripts'):
    recurrent actor and critic of width 64 (`rmappo`), Adam 5e-4 (eps 1e-5) for both, GAE(γ 0.99,
    λ 0.95), PPO clip 0.2 (also the value clip), 15 epochs of 1 minibatch per rollout, entropy
    bonus 0.01, Huber value loss (δ 10) on a normalised value (ValueNorm), gradient clip 10 for
    each network, 400 steps of each of the 8 envs per rollout, 10-step recurrent chunks.
    Per-map settings (epochs, clip, recurrent, stacked frames, value active masks) come from
    `conf/algo/mappo_map/<env>.yaml`, the scripts' values for the paper's maps."""

    name: str = MISSING  # mappo (the variant suffix is added from `variant.name`)
    learner: Learner = Learner.mappo
    rnn_hidden_dim: int = 64  # actor (--hidden_size)
    critic_hidden_dim: int = 64
    lr: float = 5e-4  # actor
    critic_lr: float = 5e-4
    optim_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_param: float = 0.2
    ppo_epochs: int = 15  # --ppo_epoch
    num_mini_batch: int = 1  # minibatches of recurrent chunks per epoch
    entropy_coef: float = 0.01
    value_loss_coef: float = 1.0
    huber_delta: float = 10.0
    clipped_value_loss: bool = True
    value_norm: bool = True  # --use_valuenorm: running mean/std of the returns, updated on every minibatch
    grad_norm_clip: float = 10.0
    # steps of each parallel env per rollout (--episode_length 400 in every SMAC script); envs reset
    # as their episodes end, and episodes and recurrent states run on into the next rollout
    rollout_steps: int = 400
    # recurrent training on chunks of this many steps, each starting from the state the rollout
    # had there (--data_chunk_length); must divide rollout_steps
    data_chunk_length: int = 10
    # rmappo (true) or mappo (false: a feed-forward actor and critic, on-policy's non-recurrent policy)
    recurrent: bool = True
    # inputs of the last k steps concatenated (--stacked_frames with --use_stacked_frames; zeros
    # before the episode start); k > 1 needs recurrent=false, as on-policy's scripts use it
    stacked_frames: int = 1
    use_feature_normalization: bool = True  # LayerNorm on the actor's and critic's inputs
    use_orthogonal: bool = True  # orthogonal weights, zero biases
    gain: float = 0.01  # gain of the policy's output layer (with use_orthogonal)
    # dead agents' steps (SMAX's ally_alive) left out of the policy loss, the entropy and the
    # advantage-normalisation statistics / out of the value loss
    use_policy_active_masks: bool = True
    use_value_active_masks: bool = True
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
    # backend=sc2: a game step that takes longer is a hung game; it is restarted and its episode dropped
    step_timeout_s: float = 120.0


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
    # keep the replay buffer in every checkpoint, so a resumed off-policy run continues exactly
    # (large: up to buffer_size episodes); without it a resumed run refills the buffer first
    save_buffer: bool = False


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
    render: bool = False  # also save one greedy episode as an animated GIF (render_<mode>.gif in the run folder)
    render_path: str | None = None  # where the GIF goes instead
    render_fps: int = 8


class Budget(ChoiceEnum):
    full = "full"  # the paper's env-step budget of each grid group
    smoke = "smoke"  # `smoke_overrides` instead: every run in about a minute


@dataclass
class GridGroup:
    """Maps that the paper trains for the same number of env steps."""

    envs: list[str] = MISSING  # env options, e.g. smac/3s_vs_5z
    max_env_steps: int = MISSING


@dataclass
class GridConfig:
    """One of the paper's experiment grids (`conf/grid/*.yaml`): algos x maps x seeds."""

    name: str = MISSING
    algos: list[str] = MISSING  # algo options, e.g. qmix_gip
    groups: list[GridGroup] = MISSING
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    overrides: list[str] = field(default_factory=list)  # ptde.train overrides for every run of the grid


@dataclass
class SweepConfig:
    """`python -m ptde.sweep grid=paper_smac budget=smoke`: a grid as Hydra multiruns, then the report.

    `algos`, `envs` and `seeds` restrict the grid (e.g. one map for a smoke test); `launcher` is the
    Hydra launcher every multirun uses (basic: one job after the other; joblib: parallel on this
    machine; submitit_slurm: one Slurm job per run).
    """

    grid: GridConfig = MISSING
    budget: Budget = Budget.full
    smoke_overrides: list[str] = field(default_factory=list)
    algos: list[str] | None = None
    envs: list[str] | None = None
    seeds: list[int] | None = None
    launcher: str = "basic"
    extra: list[str] = field(default_factory=list)  # more ptde.train overrides (e.g. hydra.launcher.n_jobs=4)
    out: str | None = None  # the sweep folder; default outputs/multirun/<grid>/<date_time>
    report: bool = True
    dry_run: bool = False  # print the multirun commands only


@dataclass
class ReportConfig:
    """`python -m ptde.report source=<multirun folder>` (or `source=wandb project=ptde`).

    `source` is a folder holding run folders (results.json, metrics.csv) and/or offline wandb runs
    (`offline-run-*`), or the word `wandb` to read a project through the wandb API (online only).
    """

    source: str = MISSING
    project: str = "ptde"
    entity: str | None = None
    out: str | None = None  # default: <source>/report (./report for source=wandb)
    wandb_report: bool = False  # also build the wandb report: saved when logged in, else its spec written (offline)
    bootstrap_reps: int = 2000  # bootstrap resamples of the aggregate confidence intervals
    seed: int = 0
    threshold: float = 0.8  # sample-efficiency table: env steps to the first test score >= threshold


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


@dataclass
class CampaignGroup:
    """Runs of a campaign that share a budget: every algo x env x seed of the group."""

    envs: list[str] = MISSING  # env options, e.g. smac/3s_vs_5z
    algos: list[str] = MISSING  # algo options; giu/gip runs go through stage 2 (the *_kd row and PRR)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    max_env_steps: int = MISSING


@dataclass
class CampaignConfig:
    """A benchmark campaign (`conf/campaign/*.yaml`): the grid whose artefacts are committed under `out`."""

    name: str = MISSING
    out: str = MISSING  # repo folder of the committed artefacts: <out>/runs/<run>/, <out>/report/
    groups: list[CampaignGroup] = MISSING
    overrides: list[str] = field(default_factory=list)  # ptde.train overrides for every run


@dataclass
class BenchmarkConfig:
    """`python -m ptde.tools.campaign campaign=smax` (`make benchmark`): run a campaign resumably.

    Each run trains in its own folder under `work_dir` (checkpoints, teacher data: never committed);
    when it finishes, its small artefacts are copied to `<campaign.out>/runs/<run>/` and the report
    is rebuilt. Re-running skips finished runs and resumes interrupted ones from their checkpoint.
    """

    campaign: CampaignConfig = MISSING
    budget: Budget = Budget.full
    smoke_overrides: list[str] = field(default_factory=list)  # replace each group's budget when budget=smoke
    jobs: int = 2  # runs in parallel (one per core, each with trainer.torch_threads=1)
    nice: int = 10  # niceness of the training processes (0: none), so interactive work stays responsive
    work_dir: str | None = None  # default outputs/benchmarks/<campaign.name>
    out: str | None = None  # default campaign.out
    only: list[str] | None = None  # run names (or fnmatch patterns) to restrict the campaign to
    extra: list[str] = field(default_factory=list)  # more ptde.train overrides for every run
    report: bool = True
    dry_run: bool = False  # list the runs and what would happen to each


def register_entry_configs() -> None:
    """Schemas of `ptde.evaluate` and `ptde.distill`."""
    cs = ConfigStore.instance()
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="distill_schema", node=DistillEntryConfig)
    cs.store(name="sweep_schema", node=SweepConfig)
    cs.store(name="report_schema", node=ReportConfig)
    cs.store(name="benchmark_schema", node=BenchmarkConfig)
    cs.store(group="schema/campaign", name="campaign", node=CampaignConfig)
    cs.store(group="schema/grid", name="grid", node=GridConfig)
