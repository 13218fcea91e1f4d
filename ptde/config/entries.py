"""Schemas of the other entry points: evaluate, distill, sweep, report and the benchmark campaign."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from ptde.config.choices import ChoiceEnum
from ptde.config.run import DistillConfig


class EvalMode(ChoiceEnum):
    centralized = "centralized"
    decentralized = "decentralized"


class TeacherZ(ChoiceEnum):
    sampled = "sampled"  # z = μ + σ·ε, as the teacher acts in training and tests (the authors' choice)
    mean = "mean"  # z = μ


@dataclass
class EvaluateConfig:
    """`python -m ptde.evaluate checkpoint=<run folder or .ckpt> episodes=32`."""

    checkpoint: str = MISSING
    episodes: int = 32
    mode: EvalMode = EvalMode.centralized
    # what a GIU/GIP teacher acts on (mode=centralized): its sampled z, or its mean μ
    z: TeacherZ = TeacherZ.sampled
    seed: int = 12345
    batch_size: int = 32  # parallel environments
    render: bool = False  # also save one greedy episode as an animated GIF (render_<mode>.gif in the run folder)
    render_path: str | None = None  # where the GIF goes instead
    render_fps: int = 8


class Budget(ChoiceEnum):
    full = "full"  # the paper's env-step budget of each grid group
    smoke = "smoke"  # `smoke_overrides` instead (`trainer=smoke`): every run, both stages, in minutes


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
    smoke_overrides: list[str] = field(default_factory=list)  # conf/smoke/default.yaml: trainer=smoke
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
    paper: bool = True  # print the paper's published cells (Tables 2-6) beside each family's table
    # just the runs whose folder path under `source` matches one of these fnmatch patterns
    # (e.g. [lr5e-4/runs/qmix_*, lr5e-4_ceil10/runs/*]: one report across a campaign's groups)
    only: list[str] | None = None


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
    """Runs of a campaign that share a budget and settings: every algo x env x seed of the group.

    A named group is a condition of an ablation (one campaign, one file, instead of a file per
    condition): its runs and report live in `<campaign.out>/<name>/`, its runs are `<name>/<run>`.
    """

    envs: list[str] = MISSING  # env options, e.g. smac/3s_vs_5z
    algos: list[str] = MISSING  # algo options; giu/gip runs go through stage 2 (the *_kd row and PRR)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    max_env_steps: int = MISSING
    name: str = ""  # "" : the runs and report go to campaign.out itself
    overrides: list[str] = field(default_factory=list)  # ptde.train overrides of this group, after the campaign's


@dataclass
class CampaignConfig:
    """A benchmark campaign (`conf/campaign/*.yaml`): the grid whose artefacts are committed under `out`."""

    name: str = MISSING
    out: str = MISSING  # repo folder of the committed artefacts: <out>/runs/<run>/, <out>/report/
    groups: list[CampaignGroup] = MISSING
    overrides: list[str] = field(default_factory=list)  # ptde.train overrides for every run
    threshold: float = 0.8  # its report's sample efficiency: env steps to the first test score >= threshold


@dataclass
class BenchmarkConfig:
    """`python -m ptde.tools.campaign campaign=smax` (`make campaign`): run a campaign resumably.

    Each run trains in its own folder under `work_dir` (checkpoints, teacher data: never committed);
    when it finishes, its small artefacts are copied to `<campaign.out>/runs/<run>/` and the report
    is rebuilt. Re-running skips finished runs and resumes interrupted ones from their checkpoint.
    """

    campaign: CampaignConfig = MISSING
    budget: Budget = Budget.full
    smoke_overrides: list[str] = field(default_factory=list)  # each group's budget when budget=smoke: trainer=smoke
    jobs: int = 2  # runs in parallel (one per core, each with trainer.torch_threads=1)
    nice: int = 10  # niceness of the training processes (0: none), so interactive work stays responsive
    work_dir: str | None = None  # default outputs/benchmarks/<campaign.name>
    out: str | None = None  # default campaign.out
    only: list[str] | None = None  # run names (or fnmatch patterns) to restrict the campaign to
    extra: list[str] = field(default_factory=list)  # more ptde.train overrides for every run
    report: bool = True
    dry_run: bool = False  # list the runs and what would happen to each
    report_only: bool = False  # rebuild every group's report from its committed runs; nothing trained


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
