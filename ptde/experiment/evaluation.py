"""The centralized-versus-decentralized evaluation: the teacher and its `*_KD` policy on the same
greedy test episodes, and the PRR of their scores; and the `*_KD` policy of a saved run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from ptde.envs import make_env
from ptde.envs.build import test_batch_size
from ptde.errors import ConfigError
from ptde.experiment.prr import performance_retention_ratio
from ptde.experiment.run_folder import STUDENT_FILE, load_student
from ptde.learners import load_learner
from ptde.nested import ConfigView
from ptde.rollout import Actor, test_policy


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
    student, teacher_ckpt, noise = load_student(path)
    teacher = load_learner(teacher_ckpt)
    return teacher.decentralized_policy(student, noise), teacher


class MeanZPolicy:
    """A GIU/GIP teacher acting on z = μ instead of its sampled z (`ptde.evaluate z=mean`): does the
    teacher's score depend on the noise it was trained with?"""

    uses_state = True

    def __init__(self, learner: Any) -> None:
        if learner.global_info is None:
            raise ConfigError("z=mean needs a GIU or GIP teacher; this run has no global-information module")
        self.learner = learner
        if (select := getattr(learner, "select_actions", None)) is not None:
            self.select_actions = select

    def act(self, inputs: Any, hidden: Any, state: Any) -> tuple[Any, Any]:
        return self.learner.act(inputs, hidden, state, sample_z=False)


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
