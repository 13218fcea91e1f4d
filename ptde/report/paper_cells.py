"""The paper's published cells (Tables 2–6), keyed like the report's tables, so a report can print
them beside the runs it summarises instead of a reader copying them by hand.

Values as printed: win rate (Tables 2, 4, 5, 6) or score rate (Table 3), mean ± std over the paper's
3 seeds where it gives a std, and the env-step budget of the run. The paper ran SMAC on StarCraft II
(the project's default is SMAX, a different engine and enemy AI) and football for 10M env steps, so
a cell is a reference point, not a target. Learning to rank has a figure (Figure 6), no table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class PaperCell:
    mean: float
    std: float | None  # None where the paper prints no std (Tables 4–6)
    budget: str  # env steps of the paper's run, as printed ("2M"); "" where the paper gives none
    table: str  # where it is printed ("Table 2")

    def text(self) -> str:
        value = f"{self.mean:.3f}" + (f" ± {self.std:.3f}" if self.std is not None else "")
        return value + (f" ({self.budget})" if self.budget else "")


def _table(table: str, family: str, budgets: dict[str, str], rows: dict[str, list]) -> dict:
    """Cells of one printed table: `rows` maps a report row label to one (mean, std) or mean per map."""
    cells = {}
    for row, values in rows.items():
        for env, value in zip(budgets, values, strict=True):
            if value is None:
                continue
            mean, std = value if isinstance(value, tuple) else (value, None)
            cells[(family, env, row)] = PaperCell(mean, std, budgets[env], table)
    return cells


_SMAC_BUDGETS = {"3s_vs_5z": "2M", "5m_vs_6m": "2M", "3s5z_vs_3s6z": "5M", "6h_vs_8z": "5M", "3s_vs_8z": "10M",
                 "3s5z_vs_3s7z": "10M"}  # fmt: skip
_GRF_BUDGETS = dict.fromkeys(
    ["3_vs_1_with_keeper", "3_vs_2_with_keeper", "counterattack_easy", "counterattack_hard",
     "run_pass_and_shoot_with_keeper"], "10M",
)  # fmt: skip
_UNIVERSALITY_BUDGETS = {"3s_vs_5z": "5M", "3s5z_vs_3s6z": "10M"}
# Table 6 prints no budget; its QMIX_GIP and QMIX_KD cells are Table 2's, so Table 2's budgets
_TWO_STAGE_BUDGETS = {env: _SMAC_BUDGETS[env] for env in ("5m_vs_6m", "6h_vs_8z", "3s5z_vs_3s7z")}

PAPER_CELLS: dict[tuple[str, str, str], PaperCell] = {
    **_table("Table 2", "smac", _SMAC_BUDGETS, {
        "csrl": [(0.917, 0.031), (0.733, 0.063), (0.396, 0.267), (0.502, 0.373), (0.934, 0.019), (0.109, 0.092)],
        "copa": [(0.748, 0.087), (0.688, 0.117), (0.064, 0.098), (0.709, 0.129), (0.490, 0.230), (0.000, 0.000)],
        "qmix_giu": [(0.868, 0.095), (0.696, 0.079), (0.026, 0.040), (0.405, 0.310), (0.332, 0.264), (0.000, 0.000)],
        "qmix_gip": [(0.992, 0.006), (0.806, 0.008), (0.776, 0.062), (0.712, 0.053), (0.990, 0.002), (0.710, 0.152)],
        "qmix_kd": [(0.887, 0.027), (0.690, 0.088), (0.674, 0.069), (0.524, 0.085), (0.576, 0.055), (0.631, 0.201)],
        "qmix": [(0.128, 0.165), (0.586, 0.068), (0.140, 0.081), (0.012, 0.019), (0.355, 0.197), (0.000, 0.000)],
        "qplex": [(0.000, 0.000), (0.616, 0.070), (0.390, 0.145), (0.021, 0.034), (0.074, 0.066), (0.000, 0.000)],
    }),
    **_table("Table 3", "grf", _GRF_BUDGETS, {
        "qmix_giu": [(0.662, 0.256), (0.415, 0.201), (0.839, 0.075), (0.462, 0.240), (0.687, 0.072)],
        "qmix_gip": [(0.858, 0.032), (0.664, 0.209), (0.839, 0.035), (0.636, 0.074), (0.779, 0.082)],
        "qmix_kd": [(0.818, 0.056), (0.732, 0.138), (0.734, 0.176), (0.517, 0.053), (0.775, 0.055)],
        "qmix": [(0.609, 0.250), (0.491, 0.200), (0.365, 0.165), (0.184, 0.174), (0.533, 0.201)],
    }),
    **_table("Table 4", "smac", _UNIVERSALITY_BUDGETS, {
        "vdn": [0.653, 0.397], "vdn_giu": [0.971, 0.155], "vdn_gip": [0.990, 0.704], "vdn_kd": [0.889, 0.609],
    }),
    **_table("Table 5", "smac", _UNIVERSALITY_BUDGETS, {
        "mappo": [0.767, 0.000], "mappo_giu": [0.602, 0.486], "mappo_gip": [0.965, 0.694], "mappo_kd": [0.891, 0.589],
    }),
    **_table("Table 6", "smac", _TWO_STAGE_BUDGETS, {"ctds": [0.698, 0.367, 0.000], "ctds_kd": [0.490, 0.204, 0.000]}),
}  # fmt: skip

# The printed PRR rows, per (family, env, teacher row): student ÷ teacher as the paper rounds it
PAPER_PRR: dict[tuple[str, str, str], str] = {
    **{("smac", env, "qmix_gip"): p for env, p in zip(_SMAC_BUDGETS, ["89.4%", "85.6%", "86.9%", "73.6%", "58.2%", "88.9%"], strict=True)},
    **{("grf", env, "qmix_gip"): p for env, p in zip(_GRF_BUDGETS, ["95.3%", "110.2%", "87.5%", "81.3%", "99.5%"], strict=True)},
    **{("smac", env, "ctds"): p for env, p in zip(_TWO_STAGE_BUDGETS, ["70.2%", "55.6%", "–"], strict=True)},
}  # fmt: skip


def paper_reference(table: pd.DataFrame, family: str, prr_teachers: dict[str, str]) -> pd.DataFrame | None:
    """The paper's cells laid out as the report's `table` of `family` (same rows, same maps; "–" where
    the paper has none), or None when it has none of them. `prr_teachers` maps the table's PRR row
    labels to their teacher rows ("PRR" -> "qmix_gip")."""
    out, found = {}, False
    for row in table.index:
        cells = {}
        for env in table.columns:
            if row in prr_teachers:
                cell = PAPER_PRR.get((family, env, prr_teachers[row]))
            else:
                paper = PAPER_CELLS.get((family, env, row))
                cell = paper.text() if paper else None
            found |= cell is not None
            cells[env] = cell or "–"
        out[row] = cells
    if not found:
        return None
    return pd.DataFrame.from_dict(out, orient="index", columns=list(table.columns)).rename_axis("algorithm")


def tables_cited(family: str, envs: list[str], rows: list[str]) -> list[str]:
    """The paper's tables the reference cells of these rows and maps come from, in order."""
    cited = {PAPER_CELLS[k].table for k in PAPER_CELLS if k[0] == family and k[1] in envs and k[2] in rows}
    return sorted(cited)
