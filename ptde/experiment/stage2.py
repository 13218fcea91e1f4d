"""Stage 2 (paper Section 3.3): check the teacher, roll it for the teacher data, distil its μ into
a student of the local input, save the student, and evaluate teacher against student (PRR)."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping

from ptde.config.resolved import run_label
from ptde.data.checkpoint import resolve_checkpoint
from ptde.data.teacher_dataset import FILE_NAME as TEACHER_DATA
from ptde.data.teacher_dataset import TeacherDataset, collect_teacher_dataset
from ptde.envs import make_env
from ptde.errors import ConfigError
from ptde.experiment.evaluation import compare_policies
from ptde.experiment.prr import prr_undefined
from ptde.experiment.run_folder import STUDENT_FILE, save_student
from ptde.experiment.trainer import quiet_lightning
from ptde.learners import load_learner
from ptde.learners.distillation import DistillationModule, evaluate_mse, make_loaders, split_dataset
from ptde.loggers.run_logger import RunLogger
from ptde.nested import ConfigView
from ptde.nn.global_info import StudentModule


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
    seed: int,
    progress: bool,
    run_logger: RunLogger,
) -> tuple[StudentModule, dict[str, float]]:
    """Fit the student to the teacher data (curves in distill/metrics.csv and wandb, through
    `run_logger`); returns the best-validation student and its losses."""
    L.seed_everything(seed, workers=False, verbose=False)
    train_ds, val_ds = split_dataset(data, distill_cfg["val_fraction"], seed)
    train_dl, val_dl = make_loaders(train_ds, val_ds, distill_cfg["batch_size"], seed)
    module = DistillationModule(data.inputs.shape[1], z_dim, distill_cfg)
    initial_val = evaluate_mse(module.student, val_ds)
    keep = KeepBestStudent()
    quiet_lightning()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=distill_cfg["max_steps"],
        max_epochs=-1,
        val_check_interval=min(distill_cfg["val_interval"], distill_cfg["max_steps"]),
        check_val_every_n_epoch=None,
        gradient_clip_val=distill_cfg["grad_norm_clip"],
        callbacks=[EarlyStopping("distill/val_mse", patience=distill_cfg["patience"], mode="min"), keep],
        logger=run_logger.stage2_logger(),
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


def execution_noise(student_noise: bool | None, teacher: Any, var_floor: float) -> float:
    """The variance of the noise the student adds to mu'(o_i) when it acts: var_floor or 0.

    `student_noise` None: as the teacher acts. A teacher that acts on its sampled z was trained
    with z's noise (its sigma^2 sits at var_floor almost everywhere), so its agent network is not
    used to a noise-free z; a teacher that acts on mu (MAPPO) gets a noise-free student.
    """
    on = teacher.acts_on_sampled_z if student_noise is None else student_noise
    return var_floor if on else 0.0


def run_stage2(
    cfg: dict[str, Any],
    run_dir: Path,
    teacher: str | Path,
    run_logger: RunLogger,
    learner: L.LightningModule | None = None,
) -> dict[str, Any]:
    """Teacher data (reused if the run folder has it), distillation, then the PRR evaluation; each
    logged through `run_logger` (the same logger and wandb run as stage 1's for stage=all).

    `learner`: the teacher already loaded from `teacher` (`ptde.distill` reads it for its config), so
    the checkpoint is read once; the evaluation plays that teacher and the student in hand.
    `stage2_wall_time_s`: all of it, teacher data to evaluation (a resumed run repeats stage 2 from
    its start, so this is the time of the stage 2 whose results these are).
    """
    t0 = time.perf_counter()
    teacher_ckpt = resolve_checkpoint(teacher)
    learner = learner if learner is not None else load_learner(teacher_ckpt)
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
    size = {"distill/rows": float(len(data)), "distill/teacher_episodes": float(dcfg["teacher_episodes"])}
    run_logger.log_to_wandb(size)
    student, stats = distill(data, learner.global_info.z_dim, dcfg, seed, cfg["trainer"]["progress_bar"], run_logger)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    var_floor = float(cfg["variant"]["var_floor"])
    noise = execution_noise(dcfg["student_noise"], learner, var_floor)
    save_student(run_dir / "checkpoints" / STUDENT_FILE, student, teacher_ckpt, noise, var_floor)
    policy = learner.decentralized_policy(student, noise)
    evals = compare_policies(
        cfg, learner, policy, learner.info.n_actions, cfg["trainer"]["test_episodes"], seed + 30_000
    )
    run_logger.log_to_wandb({**evals, "env_steps": float(learner.counters.env_steps)})  # stats: the summary
    return {
        **stats,
        **evals,
        **prr_undefined(evals),
        "teacher": str(teacher_ckpt.resolve()),
        "algo_kd": f"{cfg['algo']['name']}_kd",
        "stage2_wall_time_s": time.perf_counter() - t0,
    }
