"""Is a run's code the code another run trained on? Run from a checkout of each commit (the working
directory is the code that runs) and compare what they print.

The grid's only 3_vs_1 learner so far (QMIX_GIP seed 0) trained on 71c52bb, the runs at the floor on
later commits with the speed work (#29) in between, so "the code changed" had to be ruled out before
"the seed". GIP/GIU sample their embedding from torch's global RNG, and the ragged update draws those
samples for real steps only, so two commits' runs part after the first update even when they compute
the same function; with the samples set to zero (z = μ, no draw) nothing random is left but the
environment's and ε-greedy's own generators, and the two commits must agree number for number.

    python same_code.py update qmix_gip trainer.precision=32-true
        one loss and its gradient norms on one real batch (16 random-policy SMAX 3m episodes, seed 0)
    python same_code.py train algo=qmix_gip env=grf/3_vs_1_with_keeper ... hydra.run.dir=D
        ptde.train itself, samples zeroed; compare D/metrics.csv between commits
"""

from __future__ import annotations

import hashlib
import json
import runpy
import sys

import torch


def zero_the_samples() -> None:
    """z = μ + σ·0: the sample's distribution is the only thing left out of the comparison."""
    torch.randn_like = lambda x, *_, **__: torch.zeros_like(x)


def one_update(algo: str, *overrides: str) -> dict:
    """The loss and gradient norms of an untrained learner on 16 of its own random-policy SMAX 3m
    episodes: the tests' `learner_and_real_batch`, as each checkout's own tests build it."""
    sys.path[:0] = [".", "tests"]  # this checkout's ptde and its tests' helpers
    from conftest import learner_and_real_batch

    learner, batch = learner_and_real_batch(algo, *overrides)
    digest = hashlib.sha1()
    for key in sorted(batch):
        digest.update(batch[key].contiguous().numpy().tobytes())
    q_params, mixer_params = list(learner.q_net.parameters()), list(learner.mixer.parameters())
    loss, stats = learner.compute_loss(batch)
    grads = torch.autograd.grad(loss, q_params + mixer_params, allow_unused=True)

    def norm(gs: tuple) -> float:
        return sum(float(g.double().pow(2).sum()) for g in gs if g is not None) ** 0.5

    return {
        "precision": getattr(learner, "precision", "32-true"),  # commits before trainer.precision: fp32
        "batch_sha1": digest.hexdigest()[:12],
        "weights_sum": sum(float(p.double().sum()) for p in q_params + mixer_params),
        "loss": loss.item(),
        "grad_norm_agents": norm(grads[: len(q_params)]),
        "grad_norm_mixer": norm(grads[len(q_params) :]),
        "q_taken_mean": stats.get("train/q_taken_mean"),
        "target_mean": stats.get("train/target_mean"),
    }


if __name__ == "__main__":
    zero_the_samples()
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "update":
        print(json.dumps({"algo": args[0], "env": "smac/3m", **one_update(*args)}))
    elif mode == "train":
        sys.path.insert(0, ".")
        sys.argv = ["ptde.train", *args]
        runpy.run_module("ptde.train", run_name="__main__", alter_sys=True)
    else:
        sys.exit("usage: same_code.py update ALGO [OVERRIDES...] | train [ptde.train ARGS...]")
