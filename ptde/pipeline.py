"""The PTDE stages as functions: stage 1 (train), stage 2 (teacher data + distillation) and the
centralized-versus-decentralized evaluation that gives the PRR. `ptde.train`, `ptde.distill` and
`ptde.evaluate` are thin command-line shells around these."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.environments import SLURMEnvironment

from ptde.callbacks import EnvInteractionCallback, StepInteractionCallback
from ptde.callbacks.env_interaction import test_policy
from ptde.data.teacher_dataset import FILE_NAME as TEACHER_DATA
from ptde.data.teacher_dataset import TeacherDataset, collect_teacher_dataset
from ptde.envs import make_env
from ptde.experiment.prr import performance_retention_ratio
from ptde.learners import build_learner, learner_class, load_learner
from ptde.learners.distillation import DistillationModule, evaluate_mse, make_loaders, split_dataset
from ptde.logging import RunLogger, Stage2Curves, build_run_logger
from ptde.nn.global_info import StudentModule
from ptde.results import atomic_write, update_results
from ptde.rollout import Actor
from ptde.runtime import (
    ConfigError,
    ConfigView,
    build_envs,
    resolve_checkpoint,
    run_label,
    test_batch_size,
)

STUDENT_FILE = "student.pt"


def make_trainer(cfg: dict[str, Any], callbacks: list[L.Callback]) -> L.Trainer:
    # on Slurm, requeueing is submitit's and ours (ptde.preemption), not Lightning's auto-requeue,
    # which would write its own checkpoint outside the run folder
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
    return L.Trainer(
        plugins=plugins,
        accelerator=cfg["trainer"]["accelerator"],
        devices=1,
        max_epochs=-1,
        max_steps=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


# ---------------------------------------------------------------------------------- stage 1
def open_run_logger(
    cfg: dict[str, Any], run_dir: Path, stage1: bool, resume_step: int | None, wandb_run_id: str | None
) -> RunLogger:
    """The run's loggers for the stages still to run, recorded in results.json by wandb run id.

    `stage1`: stage 1 still runs (its CSV continues from `resume_step`, or starts at None); else only
    stage 2 runs and metrics.csv is left as it is. `wandb_run_id`: the wandb run to continue.
    """
    name = f"{run_label(cfg)}_{cfg['env']['name']}_seed{cfg['seed']}"
    run_logger = build_run_logger(cfg["logger"], run_dir, name, cfg, resume_step, wandb_run_id, csv=stage1)
    if (run_id := run_logger.wandb_run_id) is not None:
        update_results(run_dir, wandb_run_id=run_id)
    return run_logger


def train_stage1(
    cfg: dict[str, Any], run_dir: Path, run_logger: RunLogger, resume_from: Path | None = None
) -> dict[str, Any]:
    """Train the stage-1 learner to the env-step budget; returns the final test metrics.

    `resume_from`: a checkpoint of this run to continue from. Lightning restores the networks,
    target networks, optimiser and counters; the env-interaction callback restores the RNGs (and
    the replay buffer when it was saved); `run_logger` (`open_run_logger`) continues the CSV and
    wandb logs from the checkpoint's env step.
    """
    seed = cfg["seed"]
    L.seed_everything(seed, workers=False, verbose=False)
    steps = getattr(learner_class(cfg), "collects_steps", False)  # on-policy: step-based, auto-reset envs
    train_env, test_env, info = build_envs(cfg, seed, auto_reset=steps)
    learner = build_learner(cfg, info.__dict__)
    buffer, datamodule = learner.build_data(cfg, info, seed)
    interaction = (StepInteractionCallback if steps else EnvInteractionCallback)(
        train_env,
        test_env,
        buffer,
        cfg["algo"],
        cfg["trainer"],
        run_logger,
        run_dir,
        seed,
        save_buffer=cfg["trainer"]["save_buffer"],
    )
    trainer = make_trainer(cfg, [interaction])
    t0 = time.time()
    trainer.fit(learner, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)
    wall = time.time() - t0 + interaction.seconds_before_resume
    final = test_policy(test_env, learner, info.n_actions, cfg["trainer"]["test_episodes"])
    if (student := learner.own_student()) is not None:
        # a learner that distils during stage 1 (CTDS): its teacher and student play the PRR comparison now
        final |= compare_policies(cfg, learner, student, info.n_actions, cfg["trainer"]["test_episodes"], seed + 30_000)
    c = learner.counters
    run_logger.log(final, c.env_steps)
    refs = train_env.reference_metrics(seed)  # the env's own extras (ranking: LambdaMART and random)
    train_env.close()
    test_env.close()
    return {
        **final,
        **refs,
        "success_metric": info.success_metric,  # what ptde.report tabulates for this env
        "env_steps": c.env_steps,
        "episodes": c.episodes,
        "updates": c.updates,
        "wall_time_s": wall,
        "collect_time_s": interaction.collect_seconds,
    }


# ---------------------------------------------------------------------------------- stage 2
def refuse_plain_teacher(cfg: dict[str, Any], teacher: str | Path) -> None:
    """The one refusal of a stage 2 with nothing to distill: `cfg` (the run's, which is the
    teacher's own under `ptde.distill`, or the teacher checkpoint's) has variant=none."""
    if cfg["variant"]["name"] == "none":
        raise ConfigError(
            f"stage 2 distills a GIU/GIP teacher, but {run_label(cfg)} (teacher {teacher}) has variant=none: it "
            "has no global-information module to distill; train a teacher with variant=gip (algo=qmix_gip) or "
            "variant=giu"
        )


def check_teacher(cfg: dict[str, Any], teacher_cfg: dict[str, Any], teacher_path: Path) -> None:
    """Refuse a teacher that cannot be distilled or does not match the requested run."""
    refuse_plain_teacher(teacher_cfg, teacher_path)
    diffs = [
        f"{key}: teacher has {teacher_cfg[group][field]!r}, this run asks for {cfg[group][field]!r}"
        for key, group, field in (("env", "env", "name"), ("variant", "variant", "name"), ("algo", "algo", "name"))
        if teacher_cfg[group][field] != cfg[group][field]
    ]
    if diffs:
        raise ConfigError(f"teacher {teacher_path} does not match this run: " + "; ".join(diffs))


class KeepBestStudent(L.Callback):
    """Early stopping keeps training a little past the best validation loss; restore the best."""

    def __init__(self) -> None:
        self.best = float("inf")
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        val = trainer.callback_metrics.get("distill/val_mse")
        if val is not None and float(val) < self.best:
            self.best = float(val)
            self.state = copy.deepcopy(pl_module.student.state_dict())


def distill(
    data: TeacherDataset,
    z_dim: int,
    distill_cfg: dict[str, Any],
    run_dir: Path,
    seed: int,
    progress: bool,
    run_logger: RunLogger | None = None,
) -> tuple[StudentModule, dict[str, float]]:
    """Fit the student to the teacher data (curves in distill/metrics.csv, and in wandb through
    `run_logger`); returns the best-validation student and its losses."""
    L.seed_everything(seed, workers=False, verbose=False)
    train_ds, val_ds = split_dataset(data, distill_cfg["val_fraction"], seed)
    train_dl, val_dl = make_loaders(train_ds, val_ds, distill_cfg["batch_size"], seed)
    module = DistillationModule(data.inputs.shape[1], z_dim, distill_cfg)
    initial_val = evaluate_mse(module.student, val_ds)
    keep = KeepBestStudent()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=distill_cfg["max_steps"],
        max_epochs=-1,
        val_check_interval=min(distill_cfg["val_interval"], distill_cfg["max_steps"]),
        check_val_every_n_epoch=None,
        gradient_clip_val=distill_cfg["grad_norm_clip"],
        callbacks=[EarlyStopping("distill/val_mse", patience=distill_cfg["patience"], mode="min"), keep],
        logger=[CSVLogger(save_dir=str(run_dir), name="distill", version="")]
        + ([Stage2Curves(run_logger)] if run_logger is not None else []),
        log_every_n_steps=50,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, train_dl, val_dl)
    if keep.state is not None:
        module.student.load_state_dict(keep.state)
    student = module.student.eval()
    return student, {
        "distill/initial_val_mse": initial_val,
        "distill/val_mse": evaluate_mse(student, val_ds),
        "distill/train_mse": evaluate_mse(student, train_ds),
        "distill/steps": float(trainer.global_step),
        "distill/rows": float(len(data)),
    }


def save_student(path: Path, student: StudentModule, teacher_ckpt: Path, distill_cfg: dict, var_floor: float) -> None:
    with atomic_write(path) as tmp:
        torch.save(
            {
                "state_dict": student.state_dict(),
                "input_dim": student.net[0].in_features,
                "hidden_dim": student.net[0].out_features,
                "z_dim": student.z_dim,
                "teacher_checkpoint": str(teacher_ckpt.resolve()),
                "student_noise": bool(distill_cfg["student_noise"]),
                "var_floor": float(var_floor),
            },
            tmp,
        )


def load_decentralized(run_dir: Path) -> tuple[Actor, L.LightningModule]:
    """The `*_KD` policy of a run: the teacher's agent network with the student in place of GIP
    (or, for a learner that trains its own student during stage 1 such as CTDS, that student)."""
    path = run_dir / "checkpoints" / STUDENT_FILE
    if not path.is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file():
        learner = load_learner(run_dir)
        if (student := learner.own_student()) is not None:
            return student, learner
    if not path.is_file():
        raise ConfigError(
            f"no distilled student at {path}; run stage 2 first (python -m ptde.distill teacher={run_dir})"
        )
    d = torch.load(path, map_location="cpu", weights_only=True)
    teacher = load_learner(d["teacher_checkpoint"])
    student = StudentModule(d["input_dim"], d["hidden_dim"], d["z_dim"])
    student.load_state_dict(d["state_dict"])
    noise = d["var_floor"] if d["student_noise"] else 0.0
    return teacher.decentralized_policy(student.eval(), noise), teacher


def evaluate_both(run_dir: Path, cfg: dict[str, Any], episodes: int, seed: int) -> dict[str, float]:
    """Centralized (teacher) and decentralized (student) on the same greedy test episodes; PRR."""
    policy, teacher = load_decentralized(run_dir)
    return compare_policies(cfg, teacher, policy, teacher.info.n_actions, episodes, seed)


def compare_policies(
    cfg: dict[str, Any], teacher: Actor, student: Actor, n_actions: int, episodes: int, seed: int
) -> dict[str, float]:
    """The teacher (centralized) and the student (decentralized) on the same greedy test episodes
    of a fresh test env; their success metrics and PRR."""
    env = make_env(ConfigView(cfg["env"]), batch_size=test_batch_size(cfg["env"], episodes), seed=seed, split="test")
    metric = env.get_env_info().success_metric
    env.reset(seed=seed)
    central = test_policy(env, teacher, n_actions, episodes, prefix="eval/centralized")
    env.reset(seed=seed)
    decentral = test_policy(env, student, n_actions, episodes, prefix="eval/decentralized")
    env.close()
    c, d = central[f"eval/centralized/{metric}"], decentral[f"eval/decentralized/{metric}"]
    out = {
        f"eval/centralized_{metric}": c,
        f"eval/decentralized_{metric}": d,
        "eval/centralized_return": central["eval/centralized/return"],
        "eval/decentralized_return": decentral["eval/decentralized/return"],
        "eval/prr": performance_retention_ratio(d, c),
        "eval/episodes": central["eval/centralized/episodes"],
    }
    return out


def run_stage2(
    cfg: dict[str, Any], run_dir: Path, teacher: str | Path, run_logger: RunLogger | None = None
) -> dict[str, Any]:
    """Teacher data (reused if the run folder has it), distillation, then the PRR evaluation; each
    logged into the run's wandb run by `run_logger` (the same run as stage 1's for stage=all)."""
    teacher_ckpt = resolve_checkpoint(teacher)
    learner = load_learner(teacher_ckpt)
    check_teacher(cfg, learner.hparams["cfg"], teacher_ckpt)
    dcfg = cfg["variant"]["distill"]
    seed = cfg["seed"]
    data_path = run_dir / TEACHER_DATA
    if data_path.exists():
        data = TeacherDataset.load(data_path)
    else:
        env = make_env(ConfigView(cfg["env"]), batch_size=cfg["env"]["batch_size_run"], seed=seed + 20_000)
        data = collect_teacher_dataset(learner, env, dcfg["teacher_episodes"], dcfg["teacher_epsilon"], seed)
        env.close()
        data.save(data_path)
    if run_logger is not None:
        size = {"distill/rows": float(len(data)), "distill/teacher_episodes": float(dcfg["teacher_episodes"])}
        run_logger.log_to_wandb(size)
    student, stats = distill(
        data, learner.global_info.z_dim, dcfg, run_dir, seed, cfg["trainer"]["progress_bar"], run_logger
    )
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_student(run_dir / "checkpoints" / STUDENT_FILE, student, teacher_ckpt, dcfg, cfg["variant"]["var_floor"])
    evals = evaluate_both(run_dir, cfg, cfg["trainer"]["test_episodes"], seed=seed + 30_000)
    if run_logger is not None:
        run_logger.log_to_wandb({**evals, "env_steps": float(learner.counters.env_steps)})  # stats: the summary
    return {**stats, **evals, "teacher": str(teacher_ckpt.resolve()), "algo_kd": f"{cfg['algo']['name']}_kd"}
