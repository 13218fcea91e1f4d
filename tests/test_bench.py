"""`python -m ptde.tools.bench`: every part yields figures or fails naming itself.

bench/results.json is the project's performance record; its replay section once came out empty
for months because a moved file looked for conf/ in the wrong place and nothing noticed. Each
part runs here in a smoke setting (one small map or scenario, one repeat, a few steps) and its
section must hold finite numbers for every map or scenario asked; the values are not checked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ptde.tools import bench


def finite_numbers(figures: Any) -> list[float]:
    """Every number in a section entry (labels skipped), asserting each is finite."""
    if isinstance(figures, dict):
        return [x for v in figures.values() for x in finite_numbers(v)]
    if isinstance(figures, (int, float)) and not isinstance(figures, bool):
        assert math.isfinite(figures), figures
        return [float(figures)]
    return []


def run_bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run the bench in-process with `args`, writing to tmp_path; the parsed output."""
    out = tmp_path / "results.json"
    bench.main([*args, "--out", str(out)])
    return json.loads(out.read_text())


def assert_section(section: dict[str, Any], names: list[str]) -> None:
    """The section names exactly `names`, each with at least one number, all finite."""
    assert sorted(section) == sorted(names)
    for name in names:
        assert finite_numbers(section[name]), f"{name} holds no numbers"


SMOKE = {
    "throughput": (
        ["--maps", "3m", "--repeats", "1", "--batch-episodes", "4", "--gip-maps", "5m_vs_6m"],
        {("maps",): ["3m"], ("gip_ratio",): ["5m_vs_6m"]},
    ),
    "collection": (
        ["--collect-maps", "3m", "--collect-batches", "2", "--collect-steps", "5"],
        {("collection",): ["3m"]},
    ),
    "replay": (
        ["--replay-maps", "3m", "--replay-capacity", "16", "--replay-rss-map", "3m"],
        {("replay_memory", "maps"): ["3m"]},
    ),
    "gru": (["--gru-episodes", "4", "--repeats", "1"], {("ragged_gru",): ["3s_vs_5z"]}),
}


@pytest.mark.parametrize("part", list(SMOKE))
def test_part_writes_figures(part: str, tmp_path: Path) -> None:
    pytest.importorskip("jaxmarl")
    args, sections = SMOKE[part]
    results = run_bench(tmp_path, "--parts", part, *args)
    for path, names in sections.items():
        section = results
        for key in path:
            section = section[key]
        assert_section(section, names)
    if part == "replay":
        assert finite_numbers(results["replay_memory"]["maps"]["3m"]["measured"])
    if part == "gru":  # both loops timed, both ways
        fp32 = results["ragged_gru"]["3s_vs_5z"]["32-true"]
        for name in ("forward", "forward_backward"):
            assert fp32[f"{name}_python_s"] > 0 and fp32[f"{name}_fused_s"] > 0


def test_football_part_writes_figures(tmp_path: Path) -> None:
    pytest.importorskip("gfootball.env", reason="gfootball not installed (ptde/envs/install_grf.sh)")
    args = ["--grf-scenarios", "3_vs_1_with_keeper", "--grf-batches", "1", "--grf-steps", "5"]
    results = run_bench(tmp_path, "--parts", "grf", *args)
    assert_section(results["grf_env_steps_per_s"], ["3_vs_1_with_keeper"])


def test_replay_finds_every_smac_config() -> None:
    """The replay part reads the SMAC maps from the config folder the entry points compose from."""
    from ptde.cli import CONF_DIR, conf_dir
    from ptde.tools.bench_replay import smac_maps

    assert str(conf_dir()) == CONF_DIR
    assert set(smac_maps()) == {p.stem for p in (conf_dir() / "env" / "smac").glob("*.yaml")}
    assert {"3m", "3s5z_vs_3s7z"} <= set(smac_maps())


def test_moved_config_folder_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure that went unnoticed: configs looked for where there are none."""
    import ptde.tools.bench_replay as bench_replay

    monkeypatch.setattr(bench_replay, "conf_dir", lambda: tmp_path / "conf")
    with pytest.raises(FileNotFoundError, match="SMAC map configs"):
        bench_replay.smac_maps()


def test_part_that_measured_nothing_exits_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ptde.tools.bench_replay as bench_replay

    monkeypatch.setattr(bench_replay, "bench_replay_memory", lambda *a, **k: {"capacity": 16, "maps": {}})
    out = tmp_path / "results.json"
    with pytest.raises(SystemExit) as exc:
        bench.main(["--parts", "replay", "--out", str(out)])
    assert exc.value.code not in (0, None)
    assert "'replay' measured nothing" in str(exc.value.code)
    assert not out.exists()  # the record is never written hollow


@pytest.mark.parametrize("part", bench.ALL_PARTS)
def test_check_names_each_empty_part(part: str) -> None:
    results = {"machine": {"cpus": 2}, "replay_memory": {"capacity": 16, "maps": {}}}
    problems = bench.measured_nothing(results, [part])
    assert problems and all(f"'{part}'" in p for p in problems)


def test_check_flags_entries_without_finite_numbers() -> None:
    results = {
        "maps": {"3m": {"qmix_update_s_real": float("nan")}},
        "gip_ratio": {"5m_vs_6m": {"ratio": 2.0}},
        "collection": {"3m": {"B=8": {}}},
        "replay_memory": {"maps": {"3m": {"padded_f32_episode_kib": 1.0}}, "rss_map": "3m"},
    }
    problems = bench.measured_nothing(results, ["throughput", "collection", "replay"])
    assert any("'throughput'" in p and "maps.3m" in p for p in problems)
    assert any("'collection'" in p and "3m" in p for p in problems)
    assert any("'replay'" in p and "resident" in p for p in problems)
    assert not any("gip_ratio" in p for p in problems)
    results["maps"]["3m"]["qmix_update_s_real"] = 0.1
    results["collection"]["3m"]["B=8"]["episodes_env_steps_per_s"] = 100.0
    results["replay_memory"]["maps"]["3m"]["measured"] = {"f32": {"resident_os_mib": 1.0}}
    assert bench.measured_nothing(results, ["throughput", "collection", "replay"]) == []


def test_rss_map_outside_replay_maps_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--parts", "replay", "--replay-maps", "3m", "--out", str(tmp_path / "r.json")])
    assert exc.value.code == 2


def test_a_speed_run_of_some_algos_keeps_the_others_measured_in_the_same_setting():
    from ptde.tools.bench_speed import merge_speed

    setting = {"base_commit": "1d4bb03", "env": "smac/3s_vs_5z", "env_steps": 200000}
    before = {
        **setting,
        "commit": "aaa",
        "algos": {"qmix": {"ratio": 0.6, "commit": "aaa"}, "qmix_gip": {"ratio": 0.7}},
    }
    now = {**setting, "commit": "bbb", "algos": {"qmix_gip": {"ratio": 0.55, "commit": "bbb"}}}
    merged = merge_speed(before, now)
    assert merged["algos"] == {"qmix": {"ratio": 0.6, "commit": "aaa"}, "qmix_gip": {"ratio": 0.55, "commit": "bbb"}}
    # another budget is another record: nothing carried over
    other = {**now, "env_steps": 50000}
    assert merge_speed(before, other)["algos"] == {"qmix_gip": {"ratio": 0.55, "commit": "bbb"}}
    assert merge_speed(None, now) == now
