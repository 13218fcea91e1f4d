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
    """{config, history (DataFrame, one row per logged step), exit_code (None while running), name}."""
    logs = sorted(run_folder.glob("*.wandb"))
    if not logs:
        raise FileNotFoundError(f"no .wandb file in {run_folder}")
    config: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    exit_code, name = None, run_folder.name
    for record in read_records(logs[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            name = record.run.display_name or name
            config.update({_key(i): json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            rows.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "exit":
            exit_code = record.exit.exit_code
    config.pop("_wandb", None)
    history = pd.DataFrame(rows).drop(columns=["_runtime", "_timestamp", "_step"], errors="ignore")
    return {"config": config, "history": history, "exit_code": exit_code, "name": name}
