"""Every JSON file ptde writes is strict JSON: an undefined number is `null` (a reason beside it where
one is known), never `NaN` or `Infinity`, which JSON.parse and other strict readers reject."""

import json
from pathlib import Path

from conftest import REPO

from ptde.experiment.prr import performance_retention_ratio, prr_undefined
from ptde.experiment.run_folder import update_results
from ptde.files import dumps_strict, write_json_atomic


def strict_loads(text: str):
    """json.loads as a strict reader (JSON.parse) reads: NaN, Infinity and -Infinity are errors."""

    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def evals(decentralized: float, centralized: float) -> dict:
    """Stage 2's evaluation keys, with the reason results.json gets beside the PRR."""
    out = {
        "eval/centralized_win_rate": centralized,
        "eval/decentralized_win_rate": decentralized,
        "eval/prr": performance_retention_ratio(decentralized, centralized),
    }
    return {**out, **prr_undefined(out)}


def test_a_run_with_an_undefined_prr_writes_only_strict_json(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    update_results(run, fresh=True, status="running", algo="qmix_gip", env="3m", env_family="smac", seed=0)
    update_results(run, **evals(0.25, 0.0), **{"test/return_std": float("inf"), "curve": [1.0, float("-inf")]})
    write_json_atomic(run / "eval_centralized.json", {"eval/win_rate": 0.0, "eval/win_rate_se": float("nan")})
    update_results(run, status="finished")

    files = sorted(run.rglob("*.json"))
    assert [f.name for f in files] == ["eval_centralized.json", "results.json"]
    parsed = {f.name: strict_loads(f.read_text()) for f in files}
    r = parsed["results.json"]
    assert r["eval/prr"] is None and r["eval/prr_undefined"].startswith("teacher scored 0")
    assert r["test/return_std"] is None and r["curve"] == [1.0, None]
    assert r["eval/decentralized_win_rate"] == 0.25 and r["status"] == "finished"  # the defined values as they were
    assert parsed["eval_centralized.json"] == {"eval/win_rate": 0.0, "eval/win_rate_se": None}

    # a later stage 2 of the run (a longer-trained teacher) that defines the PRR drops the old reason
    update_results(run, **evals(0.25, 0.5))
    r = strict_loads((run / "results.json").read_text())
    assert r["eval/prr"] == 0.5 and "eval/prr_undefined" not in r


def test_printed_results_are_strict_json_too():
    text = dumps_strict({"b": (float("nan"), 2), "a": {"x": float("-inf")}})
    assert strict_loads(text) == {"a": {"x": None}, "b": [None, 2]}


def test_every_committed_json_file_is_strict():
    files = sorted((REPO / "benchmarks").rglob("*.json"))
    assert files
    for path in files:
        strict_loads(path.read_text())
