"""Reading an offline wandb run (`<run dir>/wandb/offline-run-*/run-*.wandb`) without the network.

wandb 0.31 reads and writes these files in its Go core (`wandb-core`); the Python reader that
older versions had (`wandb.sdk.internal.datastore`) is gone. The file is wandb's documented
record log: a 7-byte header (`:W&B`, magic 0xBEE1, version 0), then LevelDB-style 32 KiB blocks
of chunks (crc32 4 bytes, length 2, type 1: full / first / middle / last), each whole record one
`wandb_internal_pb2.Record` protobuf. This module decodes that log with wandb's own protobuf
messages; it reads, never writes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

_HEADER = b":W&B\xe1\xbe\x00"
_BLOCK = 32 * 1024
_CHUNK_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_records(path: Path) -> Iterator[Any]:
    """Every `Record` of a .wandb file, in order; a torn last chunk (a killed run) is dropped."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if not data.startswith(_HEADER):
        raise ValueError(f"{path} is not a wandb run log (header {data[:7]!r})")
    pos, pending = len(_HEADER), b""
    while pos + _CHUNK_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK_HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _CHUNK_HEADER])
        if kind == 0 and length == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + _CHUNK_HEADER : pos + _CHUNK_HEADER + length]
        pos += _CHUNK_HEADER + length
        if len(chunk) < length:
            return
        if kind in (_FIRST, _MIDDLE):
            pending = (b"" if kind == _FIRST else pending) + chunk
            continue
        payload = pending + chunk if kind == _LAST else chunk
        pending = b""
        record = pb.Record()
        record.ParseFromString(payload)
        yield record


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline_run(run_folder: Path) -> dict[str, Any]:
    """{config, history (DataFrame, one row per logged step), summary, exit_code (None while running),
    name, id, group, job_type, tags} of one offline run folder."""
    logs = sorted(run_folder.glob("*.wandb"))
    if not logs:
        raise FileNotFoundError(f"no .wandb file in {run_folder}")
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"exit_code": None, "name": run_folder.name, "id": offline_run_id(run_folder)}
    out |= {"group": None, "job_type": None, "tags": []}
    for record in read_records(logs[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out |= {"name": run.display_name or out["name"], "id": run.run_id or out["id"]}
            out |= {"group": run.run_group or None, "job_type": run.job_type or None, "tags": list(run.tags)}
            config.update({_key(i): json.loads(i.value_json) for i in run.config.update})
        elif kind == "config":
            config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            rows.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
            for i in record.summary.remove:
                summary.pop(_key(i), None)
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    config.pop("_wandb", None)
    history = pd.DataFrame(rows).drop(columns=["_runtime", "_timestamp", "_step"], errors="ignore")
    summary = {k: v for k, v in summary.items() if not k.startswith("_")}
    return {**out, "config": config, "history": history, "summary": summary}


def offline_run_id(run_folder: Path) -> str:
    """`offline-run-20261201_101500-abc123` -> `abc123`: a resumed run writes one folder per process."""
    return run_folder.name.rsplit("-", 1)[-1]


def merge_offline_runs(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The folders of one run id (in time order) as one run: every process's history in order,
    later config and summary values over earlier ones, the last process's exit code."""
    merged = dict(parts[-1])
    merged["config"] = {k: v for p in parts for k, v in p["config"].items()}
    merged["summary"] = {k: v for p in parts for k, v in p["summary"].items()}
    merged["history"] = pd.concat([p["history"] for p in parts], ignore_index=True)
    return merged
