"""StarCraft-style battles on JaxMARL's SMAX, made SMAC-faithful, batched with jit + vmap.

Where SMAX differs from SMAC this adapter follows SMAC (the paper's benchmark):
- per-map episode limits from SMAC (`conf/env/smac/*.yaml`), walls do not kill;
- a normalised global state (SMAX's world state holds raw positions and type ids): per unit,
  allies then enemies, [health fraction, x, y centred and scaled to [-1, 1], weapon cooldown
  fraction, unit-type one-hot over the types present on the map], then the allies' last actions
  one-hot, as SMAC's `state_last_action=True`;
- a `won` flag (all enemies dead and an ally alive; SMAX's info has none) and termination told
  apart from the time limit (`truncated`), so learners bootstrap only on a time-out;
- by default no auto-reset: a finished environment is frozen (its outputs repeat, its reward is 0)
  until the whole batch of B episodes is over, as PyMARL's parallel runner does. With
  `auto_reset=True` an env whose episode ends is reset by SMAX's own `reset` inside the same
  jitted step (as JaxMARL's `step` does) and each env draws its keys from its own PRNG chain,
  advanced exactly as a batch-of-one env's chain: env b's episodes are the ones a B = 1 env
  seeded with `episode_chain_keys(seed, B)[b]` plays one after the other.
Reward is SMAX's team reward (enemy health removed + 1 on a win) times `reward_scale`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from ptde.envs.base import BattleFrame, EnvAdapter, Step
from ptde.envs.jax_programs import ExportedProgram, program_key
from ptde.envs.jaxmarl_import import import_smax_alone, quiet_jax_backend_probe
from ptde.envs.smac import SMACEnvConfig
from ptde.errors import ConfigError

quiet_jax_backend_probe()  # before the first array starts jax's backends
_smax = import_smax_alone()
HeuristicEnemySMAX = _smax.HeuristicEnemySMAX
Scenario = _smax.Scenario
map_name_to_scenario = _smax.map_name_to_scenario
register_scenario = _smax.register_scenario
MAP_NAME_TO_SCENARIO = sys.modules["jaxmarl.environments.smax.smax_env"].MAP_NAME_TO_SCENARIO

# Compiling a SMAX step takes seconds; keep compiled programs on disk across runs and tests.
jax.config.update(
    "jax_compilation_cache_dir", os.environ.get("PTDE_JAX_CACHE", os.path.expanduser("~/.cache/ptde/jax"))
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _program_sources() -> str:
    """A hash of what SMAX's programs are traced from: this adapter, the jaxmarl import shim, SMAX's
    own source (hashed once here, not once for each of an env's programs)."""
    files = [Path(__file__), Path(__file__).with_name("jaxmarl_import.py")]
    files += sorted(Path(_smax.__file__).parent.rglob("*.py"))
    digest = hashlib.sha256(importlib.metadata.version("jaxmarl").encode())
    for f in files:
        digest.update(b"\0" + f.read_bytes())
    return digest.hexdigest()


def _settings(cfg: Any) -> str:
    """An env config's settings as text that is the same in every process (no object ids)."""
    if isinstance(cfg, str | int | float | bool | None | tuple | list) or not hasattr(cfg, "__dict__"):
        return repr(cfg)
    return repr(sorted((k, _settings(v)) for k, v in vars(cfg).items()))


# the reset and step programs are kept on disk, exported, under a hash of these (ptde/envs/jax_programs.py)
PROGRAM_SOURCES = _program_sources()

# unit type ids in SMAX: 0 marine, 1 marauder, 2 stalker, 3 zealot, 4 zergling, 5 hydralisk
UNIT_TYPE_NAMES = ("marine", "marauder", "stalker", "zealot", "zergling", "hydralisk")
_S, _Z = 2, 3
CUSTOM_SCENARIOS = {
    # The paper's two custom maps (Section 4.1): harder versions of 3s_vs_5z and 3s5z_vs_3s6z.
    "3s_vs_8z": Scenario(jnp.array([_S] * 3 + [_Z] * 8, dtype=jnp.uint8), 3, 8, False, False),
    "3s5z_vs_3s7z": Scenario(
        jnp.array([_S] * 3 + [_Z] * 5 + [_S] * 3 + [_Z] * 7, dtype=jnp.uint8), 8, 10, False, False
    ),
}
for _name, _scenario in CUSTOM_SCENARIOS.items():
    if _name not in MAP_NAME_TO_SCENARIO:
        register_scenario(_name, _scenario)


def available_maps() -> list[str]:
    return sorted(MAP_NAME_TO_SCENARIO)


def check_config(env: dict[str, Any]) -> None:
    """A map SMAX does not have fails before any run folder is written."""
    if env["name"] not in available_maps():
        raise ConfigError(f"env.name={env['name']!r} is not a SMAX map; valid maps: {', '.join(available_maps())}")


# torch warns (once) that numpy's view of a JAX buffer is read-only; the tensors are only read
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


def _to_torch(x: jax.Array) -> torch.Tensor:
    """Zero-copy JAX -> torch on the CPU through numpy's view of the buffer: ~2 µs an array where
    `torch.from_dlpack` takes ~17 µs (eight arrays a step)."""
    return torch.from_numpy(np.asarray(x))


def episode_chain_keys(seed: int, batch_size: int) -> jax.Array:
    """The auto-reset envs' PRNG chains, one per env: [B, 2] raw keys."""
    return jax.vmap(lambda b: jax.random.fold_in(jax.random.PRNGKey(seed), b))(jnp.arange(batch_size))


def _advance_chain(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One env's chain moved on by one draw, as `SMAXEnv._reset_batch` moves a batch-of-one env's key."""
    key, sub = jax.random.split(key)
    return key, jax.random.split(sub, 1)[0]


class SMAXEnv(EnvAdapter):
    """B SMAX battles stepped together; see the module docstring for the SMAC-faithful parts."""

    def __init__(self, cfg: SMACEnvConfig, batch_size: int, seed: int = 0, auto_reset: bool = False) -> None:
        if cfg.name not in MAP_NAME_TO_SCENARIO:
            raise ValueError(f"unknown SMAX map {cfg.name!r}; valid maps: {', '.join(available_maps())}")
        self.cfg = cfg
        self.batch_size = batch_size
        scenario = map_name_to_scenario(cfg.name)
        self._env = HeuristicEnemySMAX(
            scenario=scenario,
            walls_cause_death=cfg.walls_cause_death,
            max_steps=cfg.episode_limit,
            attack_mode=cfg.enemy_attack_mode,
        )
        env = self._env
        self.n_agents = env.num_allies
        self.n_enemies = env.num_enemies
        self.n_actions = env.num_ally_actions
        self.map_name = cfg.name
        self.episode_limit = cfg.episode_limit
        types_present = np.unique(np.asarray(scenario.unit_types))
        self._type_index = jnp.asarray(np.searchsorted(types_present, np.arange(6)).clip(0, len(types_present) - 1))
        self._n_type_bits = len(types_present) if len(types_present) > 1 else 0
        self._unit_feat = 4 + self._n_type_bits
        self.obs_dim = env.obs_size
        self.state_dim = (self.n_agents + self.n_enemies) * self._unit_feat + self.n_agents * self.n_actions
        self.auto_reset = auto_reset
        self._key = episode_chain_keys(seed, batch_size) if auto_reset else jax.random.PRNGKey(seed)

        def program(name: str, fn: Callable[..., Any]) -> ExportedProgram:
            return ExportedProgram(fn, program_key(f"smax-{name}", [PROGRAM_SOURCES, _settings(cfg), str(batch_size)]))

        self._reset_fn = program("reset", self._reset_batch)
        self._step_fn = program("step", self._step_batch)
        self._auto_reset_fn = program("auto_reset", jax.vmap(self._auto_reset_one))
        self._auto_step_fn = program("auto_step", jax.vmap(self._auto_step_one))
        self._env_state = None
        self._done = None

    # ------------------------------------------------------------------ jax side (one env)
    def _global_state(self, s, last_actions):
        """SMAC-style normalised state vector of one SMAX State."""
        env = self._env
        types = s.unit_types.astype(jnp.int32)
        health = s.unit_health / env.unit_type_health[types]
        centre = jnp.array([env.map_width / 2, env.map_height / 2])
        pos = (s.unit_positions - centre) / centre
        cooldown = jnp.clip(s.unit_weapon_cooldowns / env.unit_type_weapon_cooldowns[types], 0.0, 1.0)
        feats = [health[:, None], pos, cooldown[:, None]]
        if self._n_type_bits:
            feats.append(jax.nn.one_hot(self._type_index[types], self._n_type_bits))
        units = jnp.concatenate(feats, axis=-1) * s.unit_alive[:, None]  # [n_units, unit_feat]
        last = jax.nn.one_hot(last_actions, self.n_actions)  # [n_agents, n_actions]
        return jnp.concatenate([units.reshape(-1), last.reshape(-1)])

    def _outputs(self, env_state, last_actions):
        env = self._env
        obs = env.get_obs(env_state)
        obs = jnp.stack([obs[a] for a in env.agents])  # [n, obs_dim]
        avail = env.get_avail_actions(env_state)
        avail = jnp.stack([avail[a] for a in env.agents]).astype(jnp.bool_)  # [n, A]
        state = self._global_state(env_state.state, last_actions)
        return obs, state, avail

    def _reset_one(self, key):
        _, env_state = self._env.reset(key)
        # SMAX's heuristic enemy starts with a weakly typed int field that turns strong after a
        # step, which makes jit compile the step twice; make every leaf strongly typed.
        env_state = jax.tree.map(lambda x: jax.lax.convert_element_type(x, x.dtype), env_state)
        obs, state, avail = self._outputs(env_state, jnp.zeros(self.n_agents, jnp.int32))
        return env_state, obs, state, avail

    def _step_one(self, key, env_state, actions, done_before):
        env = self._env
        acts = {a: actions[i] for i, a in enumerate(env.agents)}
        _, new_state, rewards, _, _ = env.step_env(key, env_state, acts)
        alive = new_state.state.unit_alive
        allies_dead = ~jnp.any(alive[: self.n_agents])
        enemies_dead = ~jnp.any(alive[self.n_agents :])
        terminated = allies_dead | enemies_dead
        truncated = (new_state.state.step >= self.cfg.episode_limit) & ~terminated
        won = enemies_dead & ~allies_dead
        reward = rewards[env.agents[0]] * self.cfg.reward_scale
        # freeze environments whose episode ended before this step
        new_state = jax.tree.map(lambda old, new: jnp.where(done_before, old, new), env_state, new_state)
        obs, state, avail = self._outputs(new_state, actions)
        zero = jnp.zeros((), jnp.bool_)
        return (
            new_state,
            obs,
            state,
            avail,
            jnp.where(done_before, 0.0, reward).astype(jnp.float32),
            jnp.where(done_before, zero, terminated),
            jnp.where(done_before, zero, truncated),
            jnp.where(done_before, zero, won),
            alive[: self.n_agents],
        )

    def _auto_reset_one(self, key):
        key, sub = _advance_chain(key)
        return (key, *self._reset_one(sub))

    def _auto_step_one(self, key, env_state, actions):
        """A step, then SMAX's reset where the episode ended: (key, state, outputs..., final obs, final state)."""
        key, sub = _advance_chain(key)
        new_state, obs, state, avail, reward, term, trunc, won, alive = self._step_one(
            sub, env_state, actions, jnp.zeros((), jnp.bool_)
        )
        done = term | trunc
        reset_key, sub = _advance_chain(key)
        fresh_state, fresh_obs, fresh_s, fresh_avail = self._reset_one(sub)

        def pick(fresh, old):
            return jnp.where(done, fresh, old)

        return (
            pick(reset_key, key),
            jax.tree.map(pick, fresh_state, new_state),
            pick(fresh_obs, obs),
            pick(fresh_s, state),
            pick(fresh_avail, avail),
            reward,
            term,
            trunc,
            won,
            pick(jnp.ones_like(alive), alive),  # the agents the returned obs describe
            obs,
            state,
        )

    def _reset_batch(self, key):
        """A reset of all B envs in one dispatch, the key split included (split eagerly, outside
        the program, it cost ~80 µs a reset and a compile in every process)."""
        key, sub = jax.random.split(key)
        return key, *jax.vmap(self._reset_one)(jax.random.split(sub, self.batch_size))

    def _step_batch(self, key, env_state, actions, done):
        """One step of all B envs in one dispatch: the key split (as `_reset_batch` splits it), the vmapped
        step and the done flags, so a step costs one call into XLA instead of four."""
        key, sub = jax.random.split(key)
        out = jax.vmap(self._step_one)(jax.random.split(sub, self.batch_size), env_state, actions, done)
        return key, done | out[5] | out[6], out

    # ------------------------------------------------------------------ torch side (batch)
    def rng_state(self) -> torch.Tensor:
        """The PRNG key (as a tensor, so checkpoints stay weights_only-loadable), for exact resumes."""
        return torch.from_numpy(np.asarray(jax.random.key_data(self._key)).copy())

    def set_rng_state(self, key: torch.Tensor) -> None:
        self._key = jnp.asarray(key.numpy(), dtype=jnp.uint32)

    def reset(self, seed: int | None = None) -> Step:
        if self.auto_reset:
            if seed is not None:
                self._key = episode_chain_keys(seed, self.batch_size)
            self._key, self._env_state, obs, state, avail = self._auto_reset_fn(self._key)
        else:
            if seed is not None:
                self._key = jax.random.PRNGKey(seed)
            self._key, self._env_state, obs, state, avail = self._reset_fn(self._key)
        self._done = jnp.zeros(self.batch_size, jnp.bool_)
        self._avail = np.asarray(avail)  # [B, n, A] for the next step's action check
        zeros = torch.zeros(self.batch_size, dtype=torch.bool)
        return Step(
            obs=_to_torch(obs),
            state=_to_torch(state),
            avail_actions=_to_torch(avail),
            reward=torch.zeros(self.batch_size),
            terminated=zeros,
            truncated=zeros.clone(),
            won=zeros.clone(),
        )

    def step(self, actions: torch.Tensor) -> Step:
        if self._env_state is None:
            raise RuntimeError("call reset() before step()")
        acts = self._check_actions(actions)
        if self.auto_reset:
            return self._auto_step(acts)
        try:
            key, done, out = self._step_fn(self._key, self._env_state, acts, self._done)
        except Exception as exc:  # an XLA/JAX error names neither the map nor the failing env
            keys = jax.random.split(jax.random.split(self._key)[1], self.batch_size)  # the step's keys
            raise RuntimeError(
                f"SMAX map {self.map_name}: the batched step of {self.batch_size} envs failed "
                f"({self._locate_failure(keys, acts)}): {type(exc).__name__}: {exc}"
            ) from exc
        self._key, self._done = key, done
        self._env_state, obs, state, avail, reward, term, trunc, won, ally_alive = out
        return self._to_step(obs, state, avail, reward, term, trunc, won, ally_alive)

    def _auto_step(self, acts: jax.Array) -> Step:
        try:
            out = self._auto_step_fn(self._key, self._env_state, acts)
        except Exception as exc:
            raise RuntimeError(
                f"SMAX map {self.map_name}: the batched auto-reset step of {self.batch_size} envs failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._key, self._env_state, obs, state, avail, reward, term, trunc, won, ally_alive, f_obs, f_state = out
        return self._to_step(
            obs,
            state,
            avail,
            reward,
            term,
            trunc,
            won,
            ally_alive,
            final_obs=_to_torch(f_obs),
            final_state=_to_torch(f_state),
        )

    def _to_step(self, obs, state, avail, reward, term, trunc, won, ally_alive, **final: torch.Tensor) -> Step:
        """The batched JAX outputs as a torch Step (`final`: the auto-reset path's final_obs/final_state)."""
        self._avail = np.asarray(avail)
        return Step(
            obs=_to_torch(obs),
            state=_to_torch(state),
            avail_actions=_to_torch(avail),
            reward=_to_torch(reward),
            terminated=_to_torch(term),
            truncated=_to_torch(trunc),
            won=_to_torch(won),
            info={"ally_alive": _to_torch(ally_alive)},
            **final,
        )

    def _check_actions(self, actions: torch.Tensor) -> np.ndarray:
        """The actions as SMAX takes them (int32 [B, n], numpy: jit moves them in itself).

        An unavailable action (a policy that ignores avail_actions) is a bug, not a move: SMAX
        would silently clamp or ignore it. Finished envs are frozen and take any action. Checked in
        numpy, a few µs a step where torch's small ops took ~20."""
        acts = actions.numpy()  # [B, n]
        live = ~np.asarray(self._done)  # [B]
        in_range = (acts >= 0) & (acts < self.n_actions)  # [B, n]
        picked = np.take_along_axis(self._avail, acts.clip(0, self.n_actions - 1)[..., None], -1)[..., 0]
        bad = live[:, None] & ~(in_range & picked)  # [B, n]
        if bad.any():
            b, i = (int(x) for x in np.argwhere(bad)[0])
            avail = np.flatnonzero(self._avail[b, i]).tolist()
            raise ValueError(
                f"SMAX map {self.map_name}: env {b} of {self.batch_size}, agent {i} chose action "
                f"{int(acts[b, i])}, which is not available (available actions: {avail})"
            )
        return acts.astype(np.int32)

    def _locate_failure(self, keys: jax.Array, acts: jax.Array) -> str:
        """Re-run the failed step env by env (outside vmap) to name the first env that fails."""
        step_one = jax.jit(self._step_one)
        for b in range(self.batch_size):
            one = jax.tree_util.tree_map(lambda x, b=b: x[b], self._env_state)
            try:
                step_one(keys[b], one, acts[b], self._done[b])
            except Exception:  # noqa: BLE001 - this is the env we are looking for
                return f"env {b} fails on its own"
        return "no single env fails on its own"

    @property
    def unit_alive(self) -> torch.Tensor:
        """SMAX's own alive flags of every unit, [B, n_allies + n_enemies] (for checks)."""
        return _to_torch(self._env_state.state.unit_alive)

    def frame(self, index: int = 0) -> BattleFrame:
        """Unit positions and health of battle `index` now (for rendering an episode)."""
        s = jax.tree.map(lambda x: np.asarray(x[index]), self._env_state.state)
        types = s.unit_types.astype(np.int64)
        return BattleFrame(
            t=int(s.step),
            positions=s.unit_positions.astype(np.float32),
            health=(s.unit_health / np.asarray(self._env.unit_type_health)[types]).astype(np.float32),
            alive=s.unit_alive.astype(bool),
            n_allies=self.n_agents,
            unit_types=[UNIT_TYPE_NAMES[k] for k in types],
            width=float(self._env.map_width),
            height=float(self._env.map_height),
        )

    def close(self) -> None:
        self._env_state = None
