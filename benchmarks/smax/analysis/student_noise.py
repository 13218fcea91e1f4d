"""The GIP students acting with the authors' execution noise: z = mu'(o_i) + N(0, var_floor), on the
same 256 greedy episodes (seed 4242) as z_at_test.sh (issue 14, item 4). Their stage 2 ran with
the default student_noise=false; this only changes how the saved student acts.

Run from the repo root: python benchmarks/smax/analysis/student_noise.py <out.json> [run pattern]
(the pattern defaults to qmix_gip_*, e.g. qmix_gip_3s_vs_5z_* for one map).
Resumable: runs already in <out.json> are kept, the campaign's newly finished ones are added.
"""

import json
import sys
from pathlib import Path

from ptde.envs import make_env
from ptde.experiment.evaluation import load_decentralized
from ptde.nested import ConfigView
from ptde.rollout import test_policy

dest = Path(sys.argv[1])
out = json.loads(dest.read_text()) if dest.exists() else {}
for run in sorted(Path("outputs/benchmarks/smax").glob(sys.argv[2] if len(sys.argv) > 2 else "qmix_gip_*")):
    if run.name in out or '"status": "finished"' not in (run / "results.json").read_text():
        continue
    policy, teacher = load_decentralized(run)
    cfg = teacher.hparams["cfg"]
    policy.noise_var = cfg["variant"]["var_floor"]
    env = make_env(ConfigView(cfg["env"]), batch_size=64, seed=4242, split="test")
    m = test_policy(env, policy, teacher.info.n_actions, 256, prefix="eval")
    env.close()
    p, n = m["eval/win_rate"], m["eval/episodes"]
    out[run.name] = {
        "noise_var": policy.noise_var,
        "win_rate": p,
        "win_rate_se": (p * (1 - p) / n) ** 0.5,
        "episodes": n,
    }
    print(run.name, json.dumps(out[run.name]), flush=True)
    dest.write_text(json.dumps(out, indent=2))
