"""The 250k-spike probe of benchmarks/ltr/README.md: copy a run folder's checkpoint at 230,016 env
steps into a new folder as its last.ckpt, with one thing changed, so `ptde.train` continues it.

    python benchmarks/ltr/spike/continue_from.py <run> <new> [lr=0.0005] [eps=1e-5] [sampleseed=1]
    python -m ptde.train algo=qmix env=ltr/synthetic seed=1 env.synthetic_queries=10000 \\
        trainer.max_env_steps=262000 trainer.log_interval=320 trainer.checkpoint_interval=230000 \\
        trainer.torch_threads=1 trainer.progress_bar=false logger=csv hydra.run.dir=<new>

lr / eps: Adam's param group as the checkpoint restores it; sampleseed: the replay sampler's
generator. The checkpoint predates a6ff9eb, so every continuation also restarts the training
queries' order (the env's state was not yet saved).
"""

import json
import shutil
import sys
from pathlib import Path

import torch

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(dst, ignore_errors=True)
(dst / "checkpoints").mkdir(parents=True)
shutil.copy(src / "config.yaml", dst / "config.yaml")
results = json.loads((src / "results.json").read_text())
(dst / "results.json").write_text(json.dumps({**results, "status": "running", "stages_done": []}))
shutil.copytree(src / "checkpoints" / "replay", dst / "checkpoints" / "replay")
ckpt = torch.load(src / "checkpoints" / "env_steps_230016.ckpt", weights_only=False, map_location="cpu")
for change in sys.argv[3:]:
    key, value = change.split("=")
    if key in ("lr", "eps"):
        ckpt["optimizer_states"][0]["param_groups"][0][key] = float(value)
    elif key == "sampleseed":
        ckpt["ReplayDataModule"]["generator"] = torch.Generator().manual_seed(int(value)).get_state()
    else:
        raise SystemExit(f"unknown change {key!r}: lr, eps or sampleseed")
torch.save(ckpt, dst / "checkpoints" / "last.ckpt")
