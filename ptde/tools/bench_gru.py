"""`make bench`'s `gru` part: the agents' GRU over an update's real steps, Python loop against the C++ one.

Why its own part: the GRU is the largest piece of a QMIX update (issue 29's profiles), and
`trainer.fused_gru` is only worth its compiler if the kernel keeps paying on the machine at hand.
Shapes of an update on 3s_vs_5z: 128 episodes of 30-110 steps (uniform, seeded), 3 agents, H = 64,
input 64; forward alone (the target network's pass) and forward + backward (the online one), each
precision of `trainer.precision`.
"""

from __future__ import annotations

import time

import torch

from ptde.machine import cpu_has_bf16
from ptde.nn.ragged_gru import RaggedLayout, fused_kernel_on, ragged_gru, use_fused_kernel


def bench_ragged_gru(episodes: int = 128, repeats: int = 10, agents: int = 3, hidden: int = 64) -> dict[str, object]:
    """Seconds per call of each loop (min over `repeats` single calls, alternated call by call so both
    see the same load, after one warm-up call of each). Leaves the process's loop as it found it."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(30, 111, (episodes,), generator=g)
    layout = RaggedLayout.of(lengths, int(lengths.max()), agents)
    torch.manual_seed(0)
    gru = torch.nn.GRU(hidden, hidden)
    x = torch.randn(sum(layout.counts), hidden, generator=g)
    out: dict[str, object] = {"episodes": episodes, "rows": x.shape[0], "steps": len(layout.counts)}
    was_on = fused_kernel_on()
    if not use_fused_kernel(True):
        raise RuntimeError("the C++ GRU kernel did not build here (ptde/nn/cpp_kernels.py); nothing to compare")
    precisions = ["32-true", "bf16-mixed"] if cpu_has_bf16() else ["32-true"]
    for precision in precisions:

        def call(backward: bool, precision: str = precision) -> None:
            xx = x.detach().requires_grad_(backward)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
                with torch.set_grad_enabled(backward):
                    h = ragged_gru(gru, xx, layout.counts)
            if backward:
                h.float().sum().backward()

        figures: dict[str, float] = {}
        for backward, name in ((False, "forward"), (True, "forward_backward")):
            times: dict[bool, list[float]] = {False: [], True: []}
            for fused in (False, True):  # warm-up
                use_fused_kernel(fused)
                call(backward)
            for _ in range(repeats):
                for fused in (False, True):
                    use_fused_kernel(fused)
                    t = time.perf_counter()
                    call(backward)
                    times[fused].append(time.perf_counter() - t)
            figures[f"{name}_python_s"] = min(times[False])
            figures[f"{name}_fused_s"] = min(times[True])
            figures[f"{name}_ratio"] = min(times[True]) / min(times[False])
        out[precision] = figures
    use_fused_kernel(was_on)
    return out
