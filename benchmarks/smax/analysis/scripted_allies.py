"""A scripted team on SMAX maps: the allies play SMAX's own heuristic, the policy its enemy plays
(attack the closest enemy in range, else advance on the enemy). How often that wins tells how
hard a map is against SMAX's enemy with no learning at all (issue 14: what SMAX changes, and a
check on 5m_vs_6m before blaming the learners). 256 episodes per map on test seed 4242, through
ptde's own SMAX adapter (SMAC episode limits, its `won` flag).

Run from the repo root: python benchmarks/smax/analysis/scripted_allies.py <out.json> [map ...]
(maps default to the campaign's three and 2s3z). Resumable: maps already in <out.json> are kept.
"""

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import torch
from hydra import compose, initialize_config_dir

from ptde.config import register_configs
from ptde.config.resolved import to_container
from ptde.envs import make_env
from ptde.envs.smax import SMAXEnv
from ptde.nested import ConfigView

heuristic = sys.modules["jaxmarl.environments.smax.heuristic_enemy"]
EPISODES, BATCH, SEED = 256, 64, 4242
CONF = Path(__file__).resolve().parents[3] / "conf"


def env_config(name: str) -> dict:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_container(compose("config", overrides=[f"env=smac/{name}"]))["env"]


def scripted_win_rate(name: str) -> dict:
    cfg = env_config(name)
    env = make_env(ConfigView(cfg), batch_size=BATCH, seed=SEED, split="test")
    assert isinstance(env, SMAXEnv)
    smax = env._env._env  # the plain SMAX env under the heuristic-enemy wrapper
    policy = jax.jit(jax.vmap(jax.vmap(heuristic.create_heuristic_policy(smax, 0, attack_mode="closest"))))
    key = jax.random.PRNGKey(SEED)
    n = env.n_agents
    initial = jax.tree.map(
        lambda x: jnp.broadcast_to(jnp.asarray(x), (BATCH, n) + jnp.shape(x)),
        heuristic.get_heuristic_policy_initial_state(),
    )
    wins, returns, lengths, played = 0, [], [], 0
    while played < EPISODES:
        step = env.reset()
        pstate = initial
        done = torch.zeros(BATCH, dtype=torch.bool)
        ret = torch.zeros(BATCH)
        length = torch.zeros(BATCH)
        won = torch.zeros(BATCH, dtype=torch.bool)
        while not done.all():
            key, sub = jax.random.split(key)
            keys = jax.random.split(sub, BATCH * n).reshape(BATCH, n, -1)
            actions, pstate = policy(keys, pstate, jnp.asarray(step.obs.numpy()))
            a = torch.from_numpy(jax.device_get(actions).astype("int64"))  # [B, n]
            avail = step.avail_actions
            ok = avail.gather(-1, a[..., None]).squeeze(-1)
            a = torch.where(ok, a, avail.float().argmax(-1))  # an unavailable pick -> the first available
            step = env.step(a)
            live = ~done
            ret += step.reward * live
            length += live.float()
            won |= step.won & live
            done |= step.done
        take = min(BATCH, EPISODES - played)
        wins += int(won[:take].sum())
        returns += ret[:take].tolist()
        lengths += length[:take].tolist()
        played += take
    env.close()
    p = wins / played
    return {
        "win_rate": p,
        "win_rate_se": (p * (1 - p) / played) ** 0.5,
        "return_mean": sum(returns) / played,
        "ep_length_mean": sum(lengths) / played,
        "episodes": played,
        "episode_limit": cfg["episode_limit"],
    }


dest = Path(sys.argv[1])
out = json.loads(dest.read_text()) if dest.exists() else {}
for name in sys.argv[2:] or ["3m", "2s3z", "3s_vs_5z", "5m_vs_6m"]:
    if name in out:
        continue
    out[name] = scripted_win_rate(name)
    print(name, json.dumps(out[name]), flush=True)
    dest.write_text(json.dumps(out, indent=2))
