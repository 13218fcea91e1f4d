"""Real StarCraft II through SMAC's `StarCraft2Env` (oxwhirl/smac), for users who have both.

`env=smac/<map> env.backend=sc2` runs the same maps as the SMAX default on the real game.
B games are stepped one after another in this process (each game is its own SC2 process).
SMAC ends an episode at its time limit with `terminated=True` and `info["episode_limit"]`;
this adapter reports that as `truncated`, like the SMAX backend, so learners bootstrap from it.

A game that crashes (any exception from SMAC: the SC2 process died, its websocket closed) or hangs
(no answer within `env.step_timeout_s`) is closed and started again; its episode is dropped
(`info["dropped"]`, not learned from, counted) and the batch goes on.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ptde.envs.base import EnvAdapter, EnvInfo, Step
from ptde.errors import ConfigError

log = logging.getLogger(__name__)


class GameHung(RuntimeError):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise GameHung if the block runs longer than `seconds` (SIGALRM: main thread only; elsewhere
    no limit). SMAC's calls block on a socket, which the alarm interrupts."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise GameHung(f"no answer from the game within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


INSTALL_HELP = (
    "env.backend=sc2 needs the SMAC package and the StarCraft II game: "
    "`pip install git+https://github.com/oxwhirl/smac.git`, then install StarCraft II and the SMAC "
    "maps as https://github.com/oxwhirl/smac#installing-starcraft-ii describes (set SC2PATH). "
    "The default env.backend=smax (JaxMARL's SMAX) needs neither."
)


def smac_env_factory() -> Callable[..., Any]:
    """SMAC's StarCraft2Env class, or an ImportError that says how to get it."""
    try:
        from smac.env import StarCraft2Env
    except ImportError as exc:
        raise ImportError(INSTALL_HELP) from exc
    return StarCraft2Env


def check_config(env: dict[str, Any]) -> None:
    """Without SMAC and the StarCraft II game the run stops here, saying how to install them."""
    try:
        smac_env_factory()
    except ImportError as exc:
        raise ConfigError(str(exc)) from None


class SC2Env(EnvAdapter):
    def __init__(
        self,
        cfg: Any,
        batch_size: int,
        seed: int = 0,
        env_factory: Callable[..., Any] | None = None,
        auto_reset: bool = False,
    ):
        factory = env_factory or smac_env_factory()
        self.cfg = cfg
        self.auto_reset = auto_reset  # a game whose episode ends is reset within step()
        self.batch_size = batch_size
        self._factory, self._seed = factory, seed
        self.restarts = 0  # games restarted over this env's life
        self.envs = [factory(map_name=cfg.name, seed=seed + i) for i in range(batch_size)]
        info = self.envs[0].get_env_info()
        self.info = EnvInfo(
            n_agents=info["n_agents"],
            obs_dim=info["obs_shape"],
            state_dim=info["state_shape"],
            n_actions=info["n_actions"],
            episode_limit=info["episode_limit"],
            success_metric="win_rate",
        )
        self._done = np.ones(batch_size, dtype=bool)
        self._dropped = np.zeros(batch_size, dtype=bool)
        self._last: Step | None = None

    def get_env_info(self) -> EnvInfo:
        return self.info

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        obs = np.stack([np.asarray(e.get_obs(), dtype=np.float32) for e in self.envs])  # [B, n, o]
        state = np.stack([np.asarray(e.get_state(), dtype=np.float32) for e in self.envs])  # [B, S]
        avail = np.stack([np.asarray(e.get_avail_actions(), dtype=bool) for e in self.envs])  # [B, n, A]
        return torch.from_numpy(obs), torch.from_numpy(state), torch.from_numpy(avail)

    def _restart(self, b: int, why: str) -> None:
        log.warning("SC2 game %d of %s %s; restarting it", b, self.cfg.name, why)
        try:
            self.envs[b].close()
        except Exception:  # noqa: BLE001 - it is broken already
            pass
        self.restarts += 1
        self.envs[b] = self._factory(map_name=self.cfg.name, seed=self._seed + self.batch_size * self.restarts + b)
        self.envs[b].reset()

    def reset(self, seed: int | None = None) -> Step:
        for b, e in enumerate(self.envs):
            try:
                with time_limit(float(getattr(self.cfg, "step_timeout_s", 0.0))):
                    e.reset()
            except Exception as exc:  # noqa: BLE001 - a broken game is restarted, whatever broke it
                self._restart(b, f"failed on reset ({type(exc).__name__}: {exc})")
        self._done[:] = False
        self._dropped[:] = False
        obs, state, avail = self._observe()
        false = torch.zeros(self.batch_size, dtype=torch.bool)
        self._last = Step(
            obs, state, avail, torch.zeros(self.batch_size), false, false.clone(), false.clone(),
            info={"dropped": torch.from_numpy(self._dropped.copy())},
        )  # fmt: skip
        return self._last

    def step(self, actions: torch.Tensor) -> Step:
        if self._last is None:
            raise RuntimeError("call reset() before step()")
        B = self.batch_size
        reward = np.zeros(B, np.float32)
        term, trunc, won = (np.zeros(B, bool) for _ in range(3))
        acts = actions.cpu().numpy()
        for b, e in enumerate(self.envs):
            if self._done[b]:
                continue  # frozen until the whole batch is over
            try:
                with time_limit(float(getattr(self.cfg, "step_timeout_s", 0.0))):
                    r, terminated, info = e.step(acts[b].tolist())
            except Exception as exc:  # noqa: BLE001 - crashed or hung: drop the episode, restart the game
                self._restart(b, f"failed on step ({type(exc).__name__}: {exc})")
                self._dropped[b] = True
                trunc[b] = True
                continue
            reward[b] = r
            limit = bool(info.get("episode_limit", False))
            term[b] = bool(terminated) and not limit
            trunc[b] = bool(terminated) and limit
            won[b] = bool(info.get("battle_won", False))
        newly = term | trunc
        obs, state, avail = self._observe()
        if self.auto_reset:
            return self._auto_reset_step(newly, obs, state, avail, reward, term, trunc, won)
        keep = torch.from_numpy(self._done)  # envs already done before this step repeat their outputs
        last = self._last
        obs = torch.where(keep[:, None, None], last.obs, obs)
        state = torch.where(keep[:, None], last.state, state)
        avail = torch.where(keep[:, None, None], last.avail_actions, avail)
        self._done |= newly
        self._last = Step(
            obs, state, avail, torch.from_numpy(reward), torch.from_numpy(term), torch.from_numpy(trunc),
            torch.from_numpy(won), info={"dropped": torch.from_numpy(self._dropped.copy())},
        )  # fmt: skip
        return self._last

    def _auto_reset_step(self, newly, obs, state, avail, reward, term, trunc, won) -> Step:
        """Reset the games whose episode just ended; their final observation goes to final_obs/final_state."""
        dropped = torch.from_numpy(self._dropped.copy())
        for b in np.flatnonzero(newly):
            try:
                with time_limit(float(getattr(self.cfg, "step_timeout_s", 0.0))):
                    self.envs[b].reset()
            except Exception as exc:  # noqa: BLE001 - a broken game is restarted, whatever broke it
                self._restart(b, f"failed on reset ({type(exc).__name__}: {exc})")
            self._dropped[b] = False
        fresh_obs, fresh_state, fresh_avail = self._observe() if newly.any() else (obs, state, avail)
        self._last = Step(
            fresh_obs, fresh_state, fresh_avail, torch.from_numpy(reward), torch.from_numpy(term),
            torch.from_numpy(trunc), torch.from_numpy(won), info={"dropped": dropped},
            final_obs=obs, final_state=state,
        )  # fmt: skip
        return self._last

    def close(self) -> None:
        for e in self.envs:
            e.close()
