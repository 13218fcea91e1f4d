"""Real StarCraft II through SMAC's `StarCraft2Env` (oxwhirl/smac), for users who have both.

`env=smac/<map> env.backend=sc2` runs the same maps as the SMAX default on the real game.
B games are stepped one after another in this process (each game is its own SC2 process).
SMAC ends an episode at its time limit with `terminated=True` and `info["episode_limit"]`;
this adapter reports that as `truncated`, like the SMAX backend, so learners bootstrap from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ptde.envs.base import EnvInfo, Step

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


class SC2Env:
    def __init__(self, cfg: Any, batch_size: int, seed: int = 0, env_factory: Callable[..., Any] | None = None):
        factory = env_factory or smac_env_factory()
        self.cfg = cfg
        self.batch_size = batch_size
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
        self._last: Step | None = None

    def get_env_info(self) -> EnvInfo:
        return self.info

    def _observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        obs = np.stack([np.asarray(e.get_obs(), dtype=np.float32) for e in self.envs])  # [B, n, o]
        state = np.stack([np.asarray(e.get_state(), dtype=np.float32) for e in self.envs])  # [B, S]
        avail = np.stack([np.asarray(e.get_avail_actions(), dtype=bool) for e in self.envs])  # [B, n, A]
        return torch.from_numpy(obs), torch.from_numpy(state), torch.from_numpy(avail)

    def reset(self, seed: int | None = None) -> Step:
        for e in self.envs:
            e.reset()
        self._done[:] = False
        obs, state, avail = self._observe()
        false = torch.zeros(self.batch_size, dtype=torch.bool)
        self._last = Step(obs, state, avail, torch.zeros(self.batch_size), false, false.clone(), false.clone())
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
            r, terminated, info = e.step(acts[b].tolist())
            reward[b] = r
            limit = bool(info.get("episode_limit", False))
            term[b] = bool(terminated) and not limit
            trunc[b] = bool(terminated) and limit
            won[b] = bool(info.get("battle_won", False))
        newly = term | trunc
        obs, state, avail = self._observe()
        keep = torch.from_numpy(self._done)  # envs already done before this step repeat their outputs
        last = self._last
        obs = torch.where(keep[:, None, None], last.obs, obs)
        state = torch.where(keep[:, None], last.state, state)
        avail = torch.where(keep[:, None, None], last.avail_actions, avail)
        self._done |= newly
        self._last = Step(
            obs, state, avail, torch.from_numpy(reward), torch.from_numpy(term), torch.from_numpy(trunc),
            torch.from_numpy(won),
        )  # fmt: skip
        return self._last

    def close(self) -> None:
        for e in self.envs:
            e.close()
