"""Writing files a reader or a kill must never see half-written, and the one JSON serialiser.

A ground-floor module: every layer (envs, data, loggers, experiment, tools) writes through it, so
none of them imports a higher layer for a file helper.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def user_cache(name: str) -> Path:
    """`name`'s folder in the user's cache, $XDG_CACHE_HOME/ptde/<name> (default ~/.cache/ptde/<name>):
    where what this machine builds once for every run (compiled kernels, exported programs) is kept."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ptde" / name


@contextmanager
def atomic_write(path: Path, unique: bool = False) -> Iterator[Path]:
    """The one way the project writes a file a reader or a kill must never see half-written:
    write to the yielded temporary sibling, which is renamed over `path` when the block ends.

    A block that raises (or a process killed inside it) leaves `path` as it was and the
    temporary file behind; the next write replaces it. `unique` puts the process id into the
    temporary name, for files several processes may write at once (a shared data cache).
    """
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}" if unique else path.name + ".tmp")
    yield tmp
    os.replace(tmp, path)


def strict_json(value: Any) -> Any:
    """`value` with every non-finite float (NaN, ±inf) in it, at any depth, replaced by None.

    JSON has no NaN or Infinity: Python's json writes them as bare words that JSON.parse, jq and
    other strict readers reject. An undefined number is `null` instead; where the writer knows why
    it is undefined, it says so in a key beside it (`eval/prr_undefined`).
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def dumps_strict(data: Any, indent: int | None = 2) -> str:
    """The one way ptde turns data into JSON text (files and printed results): strict JSON, keys sorted,
    non-finite numbers as null; `allow_nan=False` makes any that slipped past `strict_json` an error."""
    return json.dumps(strict_json(data), indent=indent, sort_keys=True, allow_nan=False)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Every JSON file of a run (results.json, eval_*.json) and of the tools: strict, and atomic."""
    with atomic_write(path) as tmp:
        tmp.write_text(dumps_strict(data) + "\n")
