"""Find which tensor of an update goes non-finite first: resume a run folder (a copy of it) with a
forward hook on every module of the learner's four nets (online and target agent network and
mixer) and write, per update, each module's largest |output| and each parameter's gradient norm
to $PROBE_OUT. The row of the update that fails is written too (status `fail`, no gradients).

How the learning-to-rank QMIX_GIP run at lr 0.0005 was probed (benchmarks/ltr/README.md; the run
stopped on a NaN TD loss at 486,464 env steps, its last checkpoint is at 400,000):

    cp -r outputs/benchmarks/ltr_lr/lr5e-4/qmix_gip_synthetic_seed0 /tmp/probe
    PROBE_OUT=/tmp/probe/probe.csv python benchmarks/ltr/spike/module_probe.py algo=qmix_gip \\
        env=ltr/synthetic seed=0 trainer.max_env_steps=2000000 logger=csv trainer.progress_bar=false \\
        trainer.torch_threads=1 env.synthetic_queries=10000 algo.lr=0.0005 hydra.run.dir=/tmp/probe

The resume is exact, so the probed run fails at the same update (15,198) as the original. For the
continuation with a ceiling on σ², add `variant.var_ceiling: 10.0` under `variant:` in the copy's
config.yaml and in its last.ckpt (`ckpt["hyper_parameters"]["cfg"]["variant"]`), and
`variant.var_ceiling=10` to the command.
"""

import csv
import math
import os
import runpy
import sys

import torch

from ptde.learners.value_decomposition import ValueDecompositionLearner

NETS = ("q_net", "mixer", "target_q_net", "target_mixer")


def largest_abs(x: object) -> float | None:
    """max |x| over a tensor or a tuple of them; nan if any entry is nan, inf if any is infinite."""
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel():
        v = x.detach().float()
        if torch.isnan(v).any():
            return float("nan")
        return float(v.abs().max())
    if isinstance(x, tuple | list):
        values = [v for v in (largest_abs(y) for y in x) if v is not None]
        if not values:
            return None
        return float("nan") if any(math.isnan(v) for v in values) else max(values)
    return None


class Probe:
    def __init__(self, path: str) -> None:
        self.path = path
        self.names: list[str] | None = None
        self.current: dict[str, float] = {}
        self.rows = 0

    def attach(self, learner: ValueDecompositionLearner) -> None:
        self.names = []
        for net in NETS:
            for name, module in getattr(learner, net).named_modules():
                full = f"{net}.{name}" if name else net
                module.register_forward_hook(lambda m, i, out, full=full: self.record(full, out))
                self.names.append(full)
        self.params = [n for n, p in learner.named_parameters() if p.requires_grad]
        new = not os.path.exists(self.path)
        self.file = open(self.path, "a", newline="")  # noqa: SIM115 (open for the whole run)
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(["update", "env_steps", "status", *self.names, *(f"grad.{n}" for n in self.params)])

    def record(self, name: str, out: object) -> None:
        v = largest_abs(out)
        if v is None:
            return
        old = self.current.get(name)
        self.current[name] = v if old is None or math.isnan(v) or v > old else old

    def write(self, learner: ValueDecompositionLearner, status: str) -> None:
        grads = dict(learner.named_parameters())
        row = [learner.counters.updates, learner.counters.env_steps, status]
        row += [f"{self.current[n]:.4g}" if n in self.current else "" for n in self.names]
        for n in self.params:
            g = grads[n].grad
            row.append("" if g is None or status == "fail" else f"{float(g.norm()):.4g}")
        self.writer.writerow(row)
        self.rows += 1
        if status == "fail" or self.rows % 50 == 0:
            self.file.flush()


probe = Probe(os.environ["PROBE_OUT"])
original_step = ValueDecompositionLearner.training_step


def training_step(self: ValueDecompositionLearner, dataloader_iter) -> None:  # Lightning reads this name
    if probe.names is None:
        probe.attach(self)
    probe.current = {}  # the acting forwards between updates are not recorded
    status = "ok"
    try:
        original_step(self, dataloader_iter)
    except FloatingPointError:
        status = "fail"
        raise
    finally:
        probe.write(self, status)


ValueDecompositionLearner.training_step = training_step
sys.argv = ["ptde.train", *sys.argv[1:]]
runpy.run_module("ptde.train", run_name="__main__", alter_sys=True)
