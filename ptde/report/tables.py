"""The paper's tables: rows algorithms, columns maps, mean ± std over seeds of the final success
metric (win rate, NDCG@10), a `*_KD` row from the distilled students and a PRR row.

Std is the population std over seeds (numpy's default, ddof=0). A cell of one seed shows its value and
`(n=1)` without a std, so that it never reads as several seeds that agree.
The KD row of a GIP (or GIU) teacher is its runs' `eval/decentralized_<metric>`; the PRR row is
mean decentralized ÷ mean centralized over the same seeds, both measured by stage 2 on the same
greedy test episodes (the paper's PRR is the KD row over the GIP row of its table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptde.experiment.prr import performance_retention_ratio
from ptde.report.runs import RunRecord

_RANK = {"giu": 0, "gip": 1, "kd": 2}


def kd_label(record: RunRecord) -> str:
    """qmix_gip -> qmix_kd (the paper's QMIX_KD); another teacher keeps its name: qmix_giu_kd."""
    if record.algo.endswith("_gip") and record.results.get("algo_kd"):
        return record.results["algo_kd"]
    return f"{record.algo}_kd"


def final_scores(records: list[RunRecord], issues: list[str]) -> pd.DataFrame:
    """One row per (table row, map, seed): family, env, row, seed, value, kind (test | kd | centralized)."""
    rows = []
    for r in records:
        key = f"test/{r.metric}"
        if key not in r.results:
            issues.append(f"{r.name}: skipped, results.json has no {key}")
            continue
        base = {"family": r.family, "env": r.env, "seed": r.seed, "metric": r.metric}
        rows.append({**base, "row": r.algo, "value": float(r.results[key]), "kind": "test"})
        dec, cen = f"eval/decentralized_{r.metric}", f"eval/centralized_{r.metric}"
        if dec in r.results and cen in r.results:
            rows.append({**base, "row": kd_label(r), "value": float(r.results[dec]), "kind": "kd", "teacher": r.algo})
            rows.append({**base, "row": r.algo, "value": float(r.results[cen]), "kind": "centralized"})
    columns = ["family", "env", "seed", "metric", "row", "value", "kind", "teacher"]
    return pd.DataFrame(rows, columns=columns)


def row_order(labels: list[str]) -> list[str]:
    """The paper's order per base algorithm: GIU, GIP, KD, then the plain CTDE algorithm."""

    def key(label: str) -> tuple[str, int, str]:
        parts = label.split("_")
        for i in range(1, len(parts)):
            if parts[i] in _RANK:
                return ("_".join(parts[:i]), _RANK[parts[i]] + (i < len(parts) - 1), label)
        return (label, 3, label)

    return sorted(labels, key=key)


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """mean, std (ddof=0), n over seeds per (family, env, row) of the table's rows (test and kd)."""
    shown = scores[scores["kind"] != "centralized"]
    grouped = shown.groupby(["family", "metric", "env", "row"])["value"]
    out = grouped.agg(mean="mean", std=lambda v: float(np.std(v.to_numpy(), ddof=0)), n="count")
    return out.reset_index()


def prr(scores: pd.DataFrame) -> pd.DataFrame:
    """PRR per (family, env, teacher): mean decentralized ÷ mean centralized over the seeds."""
    kd = scores[scores["kind"] == "kd"]
    cen = scores[scores["kind"] == "centralized"]
    rows = []
    for (family, env, teacher), group in kd.groupby(["family", "env", "teacher"]):
        c = cen[(cen["family"] == family) & (cen["env"] == env) & (cen["row"] == teacher)]["value"].mean()
        d = group["value"].mean()
        rows.append(
            {
                "family": family,
                "env": env,
                "teacher": teacher,
                "kd": group["row"].iloc[0],
                "decentralized": d,
                "centralized": c,
                "prr": performance_retention_ratio(d, c),
                "n": len(group),
            }
        )
    return pd.DataFrame(rows, columns=["family", "env", "teacher", "kd", "decentralized", "centralized", "prr", "n"])


def paper_table(summary: pd.DataFrame, prrs: pd.DataFrame, family: str) -> pd.DataFrame:
    """The table of one env family as strings: rows algorithms (+ PRR rows), columns maps."""
    s = summary[summary["family"] == family]
    envs = sorted(s["env"].unique())
    full_n = int(s["n"].max()) if len(s) else 0
    table = {}
    for row in row_order(list(s["row"].unique())):
        cells = {}
        for env in envs:
            hit = s[(s["row"] == row) & (s["env"] == env)]
            if hit.empty:
                cells[env] = "–"
                continue
            m, sd, n = hit.iloc[0][["mean", "std", "n"]]
            cells[env] = mean_std_cell(m, sd, int(n), full_n)
        table[row] = cells
    p = prrs[prrs["family"] == family]
    for label, teacher in prr_labels(prrs, family).items():
        t = p[p["teacher"] == teacher]
        table[label] = {env: _prr_cell(t[t["env"] == env]["prr"]) for env in envs}
    return pd.DataFrame.from_dict(table, orient="index", columns=envs).rename_axis("algorithm")


def mean_std_cell(mean: float, std: float, n: int, full_n: int) -> str:
    """`0.812 ± 0.031`; `(n=k)` after a cell with fewer seeds than the table's fullest; one seed
    has no spread to show, so its cell is `0.719 (n=1)` even where every cell has one seed."""
    if n == 1:
        return f"{mean:.3f} (n=1)"
    return f"{mean:.3f} ± {std:.3f}" + (f" (n={n})" if n != full_n else "")


def prr_labels(prrs: pd.DataFrame, family: str) -> dict[str, str]:
    """The family table's PRR row labels and their teachers: "PRR" alone when one teacher has students,
    else "PRR (<student> / <teacher>)" per teacher."""
    p = prrs[prrs["family"] == family]
    teachers = sorted(p["teacher"].unique())
    if len(teachers) == 1:
        return {"PRR": teachers[0]}
    return {f"PRR ({p[p['teacher'] == t]['kd'].iloc[0]} / {t})": t for t in teachers}


def _prr_cell(values: pd.Series) -> str:
    if values.empty:
        return "–"
    v = float(values.iloc[0])
    return f"{v:.1%}" if np.isfinite(v) else "– (teacher 0)"
