"""Environment interaction for off-policy stage-1 training, as PyMARL's run loop does it.

Before every training step: run B parallel episodes with the current policy (epsilon-greedy,
linear anneal over env steps), push them into the replay buffer, and every `test_interval` env
steps run greedy test episodes and log `test/win_rate` and `test/return`. The callback also owns
the env-step budget and the progress display (`Progress`), both counted in env steps, and what a
checkpoint holds of the interaction (its `state_dict`); writing checkpoints is
`ptde.callbacks.checkpointing`'s.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any, ClassVar, TextIO

import lightning as L
import numpy as np
import torch
from tqdm.auto import tqdm

from ptde.data.buffer import EpisodeReplayBuffer
from ptde.data.datamodule import replay_batch_size
from ptde.envs.base import MultiAgentEnv
from ptde.loggers.run_logger import RunLogger
from ptde.rollout import run_episodes, test_policy


def linear_epsilon(env_steps: int, start: float, finish: float, anneal_time: int) -> float:
    frac = min(env_steps / max(anneal_time, 1), 1.0)
    return start + frac * (finish - start)


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal, where a redrawn bar can be read (a closed or odd stream: no)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """The env-step progress of a run, as a terminal or as a log file can show it.

    On a terminal: a tqdm bar, redrawn as env steps come in, with the latest log interval's fields
    as its postfix. Anywhere else (stdout or stderr redirected to a file, a pipe, Slurm's output
    file) a redrawn bar is one endless line of carriage returns, rewritten several times a second;
    there the same fields come as one plain line per log interval instead, nothing in between.
    """

    def __init__(self, total: int, initial: int, stream: TextIO) -> None:
        self.total = total
        self.steps = initial
        self.stream = stream
        self._t0 = time.time()
        self.bar: tqdm | None = None
        if is_terminal(stream):
            self.bar = tqdm(
                total=total, initial=initial, unit="step", desc="env steps", dynamic_ncols=True, file=stream
            )

    def update(self, steps: int) -> None:
        self.steps += steps
        if self.bar is not None:
            self.bar.update(steps)

    def report(self, fields: dict[str, str]) -> None:
        """A log interval's fields: the bar's postfix, or one line of their own."""
        if self.bar is not None:
            self.bar.set_postfix(ordered_dict=fields)  # in this order, not sorted by name
            return
        share = 100 * self.steps / max(self.total, 1)
        elapsed = tqdm.format_interval(time.time() - self._t0)
        shown = "".join(f" {key}={value}" for key, value in fields.items())
        self.stream.write(f"env steps {self.steps}/{self.total} ({share:.0f}%){shown} elapsed={elapsed}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class EnvInteractionCallback(L.Callback):
    # `train/epsilon` is logged (and shown) where ε is an exploration schedule, the Q-learners'
    logs_epsilon: ClassVar[bool] = True

    def __init__(
        self,
        train_env: MultiAgentEnv,
        test_env: MultiAgentEnv,
        buffer: EpisodeReplayBuffer,
        algo_cfg: dict[str, Any],
        trainer_cfg: dict[str, Any],
        run_logger: RunLogger,
        seed: int,
        save_buffer: bool = True,
        progress_stream: TextIO | None = None,
    ) -> None:
        """`progress_stream`: where the progress goes when `trainer.progress_bar` is on (None: the
        stderr of the moment training starts, where tqdm writes by default)."""
        super().__init__()
        self.train_env = train_env
        self.test_env = test_env
        self.buffer = buffer
        self.algo = algo_cfg
        self.tcfg = trainer_cfg
        self.run_logger = run_logger
        self.n_actions = train_env.get_env_info().n_actions
        self.generator = torch.Generator().manual_seed(seed)
        self.progress: Progress | None = None
        self.progress_stream = progress_stream
        self.last_test: dict[str, float] = {}
        self._t0 = time.time()
        self._steps_at_t0 = 0
        self.collect_seconds = 0.0
        self.save_buffer = save_buffer  # the checkpoints keep the replay (`CheckpointCallback` writes it)
        self.seconds_before_resume = 0.0  # training time of the killed process, up to its checkpoint
        self._restored_rng: dict[str, Any] | None = None

    # ------------------------------------------------------------------ helpers
    def epsilon(self, env_steps: int) -> float:
        a = self.algo
        return linear_epsilon(env_steps, a["epsilon_start"], a["epsilon_finish"], a["epsilon_anneal_time"])

    def collect(self, module: L.LightningModule) -> None:
        c = module.counters
        t = time.time()
        batch = run_episodes(
            self.train_env, module, self.n_actions, self.epsilon(c.env_steps), self.generator, module.device
        )
        self.collect_seconds += time.time() - t
        steps = int(batch.length.sum())  # a dropped episode's steps were still taken
        c.env_steps += steps
        if self.progress is not None:
            self.progress.update(steps)
        if batch.dropped is not None:  # an engine worker crashed or hung: learn nothing from it
            c.dropped_episodes += int(batch.dropped.sum())
            module.pending_metrics.setdefault("train/dropped_episodes", []).append(float(c.dropped_episodes))
            batch = batch.subset(~batch.dropped)
            if batch.batch_size == 0:
                return
        self.buffer.insert(batch)
        c.episodes += batch.batch_size
        module.pending_metrics.setdefault("train/return", []).append(batch.episode_return.mean().item())
        module.pending_metrics.setdefault("train/win_rate", []).append(batch.won.float().mean().item())
        module.pending_metrics.setdefault("train/ep_length", []).append(batch.length.float().mean().item())

    def run_test(self, module: L.LightningModule) -> dict[str, float]:
        return test_policy(self.test_env, module, self.n_actions, self.tcfg["test_episodes"])

    def _log(self, module: L.LightningModule, metrics: dict[str, float]) -> None:
        self.run_logger.log(metrics, module.counters.env_steps)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint (Lightning calls this): what a resumed run needs to continue
        as if never stopped. Tensors and plain values only, so checkpoints load weights_only."""
        state: dict[str, Any] = {
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
            "numpy_rng_pos": int(np.random.get_state()[2]),
            "python_rng": random.getstate(),
            "collect_seconds": self.collect_seconds,
            "train_seconds": self.seconds_before_resume + time.time() - self._t0,
            "last_test": dict(self.last_test),
        }
        for name, env in (("train_env", self.train_env), ("test_env", self.test_env)):
            if hasattr(env, "rng_state"):
                state[f"{name}_rng"] = env.rng_state()
        return state  # the replay is kept beside the checkpoint, in `ptde.data.replay_store`

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.collect_seconds = state["collect_seconds"]
        self.seconds_before_resume = state["train_seconds"]
        self.last_test = dict(state["last_test"])
        for name, env in (("train_env", self.train_env), ("test_env", self.test_env)):
            if not hasattr(env, "set_rng_state"):  # no random streams of its own (see ptde.envs.base)
                continue
            if f"{name}_rng" in state:
                env.set_rng_state(state[f"{name}_rng"])
            else:  # a checkpoint from before this env's state was kept
                print(
                    f"ptde.train: the checkpoint holds no state of the {name.replace('_', ' ')}'s random "
                    "streams (written before a6ff9eb, 2026-12-07): its episodes start over from the seed, so "
                    "the resumed run is not the uninterrupted one",
                    file=sys.stderr,
                )
        if "buffer" in state:  # a checkpoint of an earlier version, with the whole replay inside
            self.buffer.load_state_dict(state["buffer"])
        # the global RNGs are set when training starts: Lightning draws from them while restoring
        self._restored_rng = state

    def _restore_global_rng(self) -> None:
        s = self._restored_rng
        if s is None:
            return
        torch.set_rng_state(s["torch_rng"])
        np.random.set_state(("MT19937", s["numpy_rng"].numpy().astype(np.uint32), s["numpy_rng_pos"], 0, 0.0))
        random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in s["python_rng"]))
        self._restored_rng = None

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_global_rng()
        c = pl_module.counters
        self._t0, self._steps_at_t0 = time.time(), c.env_steps
        if self.tcfg["progress_bar"]:
            stream = self.progress_stream if self.progress_stream is not None else sys.stderr
            self.progress = Progress(self.tcfg["max_env_steps"], c.env_steps, stream)
        if c.env_steps == 0:
            self.last_test = self.run_test(pl_module)
            self._log(pl_module, self.last_test)
        if c.env_steps >= self.tcfg["max_env_steps"]:
            # killed after training's final checkpoint: the budget is spent, so no batch is collected
            # (a resumed run ends where the uninterrupted one did)
            trainer.should_stop = True
            return
        self.warm_up(pl_module)

    def warm_up(self, module: L.LightningModule) -> None:
        """Fill the replay buffer to one batch before the first update (each update collects first, too)."""
        while not self.buffer.can_sample(replay_batch_size(self.algo, self.tcfg)):
            self.collect(module)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.collect(pl_module)
        c = pl_module.counters
        tc = self.tcfg
        if c.env_steps - c.last_test_step >= tc["test_interval"]:
            c.last_test_step = c.env_steps
            self.last_test = self.run_test(pl_module)
            self._log(pl_module, self.last_test)
        if c.env_steps - c.last_log_step >= tc["log_interval"]:
            c.last_log_step = c.env_steps
            elapsed = max(time.time() - self._t0, 1e-9)
            metrics = pl_module.pop_metrics()
            if self.logs_epsilon:
                metrics["train/epsilon"] = self.epsilon(c.env_steps)
            metrics["fps"] = (c.env_steps - self._steps_at_t0) / elapsed
            metrics["train/updates"] = float(c.updates)
            metrics["train/episodes"] = float(c.episodes)
            metrics.update(self.buffer.memory_metrics())  # each store says what of its memory to log
            self._log(pl_module, metrics)
            if self.progress is not None:
                self.progress.report(self.progress_fields(metrics))
        if c.env_steps >= tc["max_env_steps"]:
            trainer.should_stop = True

    def progress_fields(self, metrics: dict[str, float]) -> dict[str, str]:
        """What the progress shows of a log interval: the last test's win rate and the TD loss only
        once there is one (no test or no update yet: none), ε where it is logged, and fps."""
        win, loss, eps = self.last_test.get("test/win_rate"), metrics.get("train/td_loss"), metrics.get("train/epsilon")
        fields = {} if win is None else {"win": f"{win:.2f}"}
        if loss is not None:
            fields["loss"] = f"{loss:.3f}"
        if eps is not None:
            fields["eps"] = f"{eps:.2f}"
        fields["fps"] = f"{metrics['fps']:.0f}"
        return fields

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
