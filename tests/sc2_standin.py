"""A stand-in for SMAC's StarCraft2Env (the SC2 binary cannot exist here), implementing the
documented API the adapter uses: get_env_info, reset, get_obs, get_state, get_avail_actions,
step -> (reward, terminated, info{battle_won, episode_limit}), close. Tests only."""

from __future__ import annotations

import numpy as np


class StandInStarCraft2Env:
    def __init__(
        self,
        map_name: str = "3m",
        seed: int = 0,
        episode_limit: int = 6,
        win_at: int | None = None,
        crash_at: int | None = None,
        hang_at: int | None = None,
    ):
        self.crash_at, self.hang_at = crash_at, hang_at  # a dying / hanging SC2 process at that step
        self.map_name, self.n_agents, self.n_actions = map_name, 3, 9
        self.episode_limit, self.win_at = episode_limit, win_at
        self.rng = np.random.default_rng(seed)
        self.t = 0
        self.closed = False

    def get_env_info(self) -> dict:
        return {"n_agents": 3, "n_actions": 9, "obs_shape": 5, "state_shape": 7, "episode_limit": self.episode_limit}

    def reset(self):
        self.t = 0
        return self.get_obs(), self.get_state()

    def get_obs(self) -> list:
        return [np.full(5, self.t + i, dtype=np.float32) for i in range(self.n_agents)]

    def get_state(self):
        return np.full(7, float(self.t), dtype=np.float32)

    def get_avail_actions(self) -> list:
        return [[1, 1] + [int(self.t % 2 == 0)] * 7 for _ in range(self.n_agents)]

    def step(self, actions: list):
        assert len(actions) == self.n_agents
        self.t += 1
        if self.t == self.crash_at:
            raise ConnectionError("websocket closed: the SC2 process died")
        if self.t == self.hang_at:
            import time

            time.sleep(3600)
        if self.win_at is not None and self.t == self.win_at:
            return 20.0, True, {"battle_won": True}
        if self.t >= self.episode_limit:
            return 1.0, True, {"battle_won": False, "episode_limit": True}
        return 1.0, False, {"battle_won": False}

    def close(self) -> None:
        self.closed = True
