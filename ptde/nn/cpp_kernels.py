"""The C++ kernels under ptde/nn/csrc, compiled on this machine at first use and cached.

Why compiled here and not shipped: the kernels are built with `-march=native` (the vector units of
the CPU that runs them), which a wheel cannot know. Why g++ directly and not
`torch.utils.cpp_extension.load`: that wants `ninja` on PATH, and one compiler call is all a
single-file kernel needs. The library is cached under `$XDG_CACHE_HOME/ptde/kernels` (default
~/.cache), named by a hash of its source, the flags, torch's version and this CPU's feature flags,
so a changed source, torch or machine builds a new one; parallel processes may build at once (each
writes its own temporary file, renamed into place). Without a compiler `load_kernel` returns None
and the caller keeps its Python path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import torch

from ptde.files import atomic_write, user_cache
from ptde.machine import cpu_flags

log = logging.getLogger(__name__)

CSRC = Path(__file__).parent / "csrc"
# -ffast-math lets gcc call glibc's vector exp/tanh (libmvec) inside the vectorised gate loops
CXXFLAGS = ("-O3", "-march=native", "-ffast-math", "-std=c++17", "-shared", "-fPIC", "-w")
# a kernel that must round as ATen's own ops do, operation by operation: IEEE arithmetic, no fused
# multiply-adds, nothing reassociated
EXACT_CXXFLAGS = ("-O2", "-fno-fast-math", "-ffp-contract=off", "-std=c++17", "-shared", "-fPIC", "-w")
KERNEL_CXXFLAGS = {"td_lambda": EXACT_CXXFLAGS}


def cxxflags(name: str) -> tuple[str, ...]:
    return KERNEL_CXXFLAGS.get(name, CXXFLAGS)


def cache_dir() -> Path:
    return user_cache("kernels")


def compile_command(source: Path, target: Path) -> list[str]:
    """The g++ call that builds csrc/<name>.cpp (`source`) into the library `target`."""
    from torch.utils.cpp_extension import include_paths, library_paths

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    includes = [f"-I{p}" for p in include_paths()]
    libs = [f"-L{p}" for p in library_paths()] + [f"-Wl,-rpath,{p}" for p in library_paths()]
    return [
        os.environ.get("CXX", "g++"),
        *cxxflags(source.stem),
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        *includes,
        str(source),
        "-o",
        str(target),
        *libs,
        "-lc10",
        "-ltorch_cpu",
    ]


def library_path(name: str) -> Path:
    source = CSRC / f"{name}.cpp"
    key = hashlib.sha256(
        b"\0".join(
            [source.read_bytes(), " ".join(cxxflags(name)).encode(), torch.__version__.encode(), cpu_flags().encode()]
        )
    ).hexdigest()[:16]
    return cache_dir() / f"{name}-{key}.so"


@cache
def load_kernel(name: str) -> bool:
    """Build (once per source, torch and CPU) and load csrc/<name>.cpp, whose ops register
    themselves under `torch.ops.ptde_<name>`. False, with one log line, when it cannot be built."""
    target = library_path(name)
    if not target.exists():
        compiler = os.environ.get("CXX", "g++")
        if shutil.which(compiler) is None:
            log.warning("ptde: no C++ compiler (%s) on PATH; the %s kernel falls back to Python", compiler, name)
            return False
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(target, unique=True) as tmp:
                subprocess.run(compile_command(CSRC / f"{name}.cpp", tmp), capture_output=True, text=True, check=True)
        except subprocess.CalledProcessError as exc:
            log.warning("ptde: building the %s kernel failed; it falls back to Python:\n%s", name, exc.stderr[-2000:])
            return False
        except OSError as exc:  # an unwritable cache folder, say
            log.warning(
                "ptde: could not build the %s kernel in %s (%s); it falls back to Python", name, target.parent, exc
            )
            return False
    try:
        torch.ops.load_library(str(target))
    except (OSError, RuntimeError) as exc:  # e.g. a library built against another torch's symbols
        log.warning("ptde: loading the %s kernel (%s) failed; it falls back to Python: %s", name, target, exc)
        return False
    return True
