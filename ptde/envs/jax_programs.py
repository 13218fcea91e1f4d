"""Jitted JAX programs kept on disk as exported StableHLO, so a new process skips tracing them.

Why: JAX's persistent compilation cache keeps compiled code, but finding it takes the program's
HLO, so every process still traces the Python function and lowers it first: ~1-1.5 s for each SMAX
program (a vmapped reset or step of one map and batch size), four of them in a run (the training
and the test env's), which was ~4 s of a 200k-step QMIX run. An exported program (`jax.export`)
loads in milliseconds and goes straight to the compilation cache. Its file is named by a hash of what
the program is made of (`key_parts`: the sources that trace it, the env's settings, the batch size)
and of the jax, jaxlib and XLA flags it was made with, so any change exports a new one; writers in
parallel each write their own temporary file, renamed into place.

The loaded program is the exported one, and so is a program exported in this process (it runs
`jax.jit(exported.call)` either way): a run computes the same whether its file was there or not.
Anything unexpected (no `flatbuffers`, which jax's serialisation needs; a file that does not load;
arguments of other shapes than the first call's) falls back to the plain jitted function.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jax

from ptde.files import atomic_write, user_cache

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """`PTDE_JAX_PROGRAMS`, else ~/.cache/ptde/jax-programs (beside the compilation cache)."""
    return Path(os.environ.get("PTDE_JAX_PROGRAMS") or user_cache("jax-programs"))


def program_key(name: str, key_parts: Iterable[str | bytes]) -> str:
    """The file stem of program `name`: a hash of its parts and of the jax it is exported with."""
    import jaxlib

    digest = hashlib.sha256()
    for part in [jax.__version__, jaxlib.__version__, os.environ.get("XLA_FLAGS", ""), *key_parts]:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return f"{name}-{digest.hexdigest()[:20]}"


class ExportedProgram:
    """`fn` (a function of arrays and pytrees of arrays) run as a program exported at its first
    call and kept on disk under `key`. Called like `jax.jit(fn)`."""

    def __init__(self, fn: Callable[..., Any], key: str) -> None:
        self.fn = fn
        self.jitted = jax.jit(fn)
        self.path = cache_dir() / f"{key}.bin"
        self._call: Callable[..., Any] | None = None
        self._out_tree: Any = None
        self._use_jitted = False

    def __call__(self, *args: Any) -> Any:
        if self._call is None and not self._use_jitted:
            loaded = self._load() or self._export(args)
            if loaded is None:
                self._use_jitted = True
            else:
                exported, self._out_tree = loaded
                # one placement for every argument: an array made eagerly (a fresh PRNG key) is
                # uncommitted, the same array returned by the program committed, and jit would
                # compile the call once for each
                device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
                self._call = jax.jit(exported.call, in_shardings=device, out_shardings=device)
        if not self._use_jitted:
            leaves = jax.tree.leaves(args)
            try:
                return jax.tree.unflatten(self._out_tree, self._call(*leaves))
            except (TypeError, ValueError) as exc:  # arguments of other shapes or dtypes than exported
                log.debug("ptde: %s called with other arguments (%s); using the jitted function", self.path, exc)
                self._use_jitted = True
        return self.jitted(*args)

    def _load(self) -> tuple[Any, Any] | None:
        if not self.path.exists():
            return None
        try:
            blob, out_tree = pickle.loads(self.path.read_bytes())
            return jax.export.deserialize(bytearray(blob)), out_tree
        except Exception as exc:  # noqa: BLE001 - a stale or broken file is exported afresh
            log.debug("ptde: could not load %s (%s); exporting it again", self.path, exc)
            return None

    def _export(self, args: tuple[Any, ...]) -> tuple[Any, Any] | None:
        leaves, in_tree = jax.tree.flatten(args)
        out_tree: list[Any] = []

        def flat(*flat_args: Any) -> list[Any]:
            out_leaves, tree = jax.tree.flatten(self.fn(*jax.tree.unflatten(in_tree, flat_args)))
            out_tree.append(tree)
            return out_leaves

        try:
            exported = jax.export.export(jax.jit(flat))(*leaves)
            blob = bytes(exported.serialize())
        except Exception as exc:  # noqa: BLE001 - the jitted function stays the way to run it
            log.debug("ptde: exporting %s failed (%s); using the jitted function", self.path, exc)
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.path, unique=True) as tmp:
                tmp.write_bytes(pickle.dumps((blob, out_tree[0])))
        except Exception as exc:  # noqa: BLE001 - an unwritable cache: exported again next time
            log.debug("ptde: could not keep %s on disk (%s)", self.path, exc)
        return exported, out_tree[0]
