"""Writing a report folder: per env family a paper table (Markdown + CSV), learning curves and the
distillation figure per map, IQM aggregates, the list of runs used and skipped, and `index.md`."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ptde.report.aggregate import iqm_table
from ptde.report.efficiency import efficiency_table, run_efficiency
from ptde.report.paper_cells import paper_reference, tables_cited
from ptde.report.plots import plot_distillation, plot_learning_curves
from ptde.report.runs import RunRecord, load_source
from ptde.report.tables import final_scores, paper_table, prr, prr_labels, summarize


def markdown(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A DataFrame as a GitHub Markdown table (index as the first column)."""

    def cell(v: object) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    header = [df.index.name or "", *map(str, df.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join([str(i), *map(cell, row)]) + " |" for i, row in zip(df.index, df.to_numpy(), strict=True)
    ]
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def efficiency_section(per_run: pd.DataFrame, family: str, threshold: float, out: Path) -> list[str]:
    """The family's sample-efficiency table (efficiency_<family>.md/csv) and its index.md lines."""
    eff = efficiency_table(per_run, family, threshold)
    if not len(eff):
        return []
    eff.to_csv(out / f"efficiency_{family}.csv")
    (out / f"efficiency_{family}.md").write_text(markdown(eff) + "\n")
    return [
        f"### {family}: sample efficiency of the test curves (threshold {threshold:g})",
        "",
        "Env steps to the first greedy test at or above the threshold (mean ± std over the seeds that "
        "reached it), and the area under the test curve divided by its env-step span (the curve's mean "
        "level); peak and final test show a collapse after a peak; the SE is the standard error of one "
        "final test (the metric's std over its episodes / √episodes; `≤` marks a binomial bound, for runs "
        "that did not log that std and a graded metric). Per-run values: [efficiency_runs.csv](efficiency_runs.csv).",
        "",
        markdown(eff),
        "",
    ]


def paper_section(table: pd.DataFrame, family: str, prr_teachers: dict[str, str], out: Path) -> list[str]:
    """The paper's cells for the table's rows and maps (paper_<family>.md/csv) and its index.md lines;
    nothing when the paper prints none of them."""
    ref = paper_reference(table, family, prr_teachers)
    if ref is None:
        return []
    ref.to_csv(out / f"paper_{family}.csv")
    (out / f"paper_{family}.md").write_text(markdown(ref) + "\n")
    cited = ", ".join(tables_cited(family, list(table.columns), list(table.index)))
    where = {
        "smac": " The paper ran StarCraft II's SMAC; the project's default env is SMAX, another engine and enemy AI."
    }
    return [
        f"### {family}: the paper's cells for the same rows and maps",
        "",
        f"As printed in the paper ({cited}): mean ± std over its 3 seeds where it gives a std, its run's "
        f"env-step budget in brackets.{where.get(family, '')} A reference point for the table above, not "
        f"the same experiment. [CSV](paper_{family}.csv)",
        "",
        markdown(ref),
        "",
    ]


def build_report(
    source: Path | tuple[list[RunRecord], list[str]],
    out: Path,
    bootstrap_reps: int = 2000,
    seed: int = 0,
    title: str | None = None,
    threshold: float = 0.8,
    paper: bool = True,
) -> Path:
    """Write the report of a folder of runs (or of already loaded runs) into `out`; returns index.md."""
    if isinstance(source, str | Path):
        title = title or str(source)
        source = load_source(Path(source))
    records, issues = source[0], list(source[1])
    out.mkdir(parents=True, exist_ok=True)
    scores = final_scores(records, issues)
    summary, prrs = summarize(scores), prr(scores)
    per_run = run_efficiency(records, threshold)
    per_run.to_csv(out / "efficiency_runs.csv", index=False)
    used = {(r.family, r.env, r.algo, r.seed) for r in records}
    lines = [f"# PTDE report: {title or 'runs'}", ""]
    lines += [
        f"{len(used)} runs used, {len(issues)} issues. Cells are mean ± std (population std, ddof=0) over "
        "seeds of each run's final greedy test score (results.json `test/<metric>`); `(n=k)` marks a cell "
        "with fewer seeds than the others, and a one-seed cell is its value with `(n=1)`, no std. "
        "`*_kd` rows are the distilled students (`eval/decentralized_<metric>`); PRR = mean student ÷ "
        "mean teacher (`eval/centralized_<metric>`) on the same stage-2 test episodes.",
        "",
    ]
    pd.DataFrame(
        [{"run": r.name, "algo": r.algo, "family": r.family, "env": r.env, "seed": r.seed} for r in records]
    ).to_csv(out / "runs.csv", index=False)
    for family in sorted(summary["family"].unique()):
        metric = summary[summary["family"] == family]["metric"].iloc[0]
        table = paper_table(summary, prrs, family)
        table.to_csv(out / f"table_{family}.csv")
        summary[summary["family"] == family].to_csv(out / f"table_{family}_values.csv", index=False)
        prrs[prrs["family"] == family].to_csv(out / f"prr_{family}.csv", index=False)
        (out / f"table_{family}.md").write_text(markdown(table) + "\n")
        lines += [f"## {family}: final test {metric}", "", markdown(table), ""]
        links = f"[CSV](table_{family}.csv) · [values](table_{family}_values.csv) · [PRR](prr_{family}.csv)"
        lines += [links, ""]
        if paper:
            lines += paper_section(table, family, prr_labels(prrs, family), out)
        lines += efficiency_section(per_run, family, threshold, out)
        agg = iqm_table(scores[scores["family"] == family], issues, family, bootstrap_reps, seed)
        if not agg.empty:
            agg.to_csv(out / f"aggregate_{family}.csv")
            lines += [f"### Across the {family} maps: IQM and mean, 95% stratified-bootstrap CI (rliable metrics)", ""]
            lines += [markdown(agg), ""]
        for env in sorted(summary[summary["family"] == family]["env"].unique()):
            runs = [r for r in records if r.family == family and r.env == env]
            curve, distill = f"curves_{_slug(family)}_{_slug(env)}.png", f"distill_{_slug(family)}_{_slug(env)}.png"
            lines += [f"### {family}/{env}", ""]
            if plot_learning_curves(runs, out / curve, f"{family}/{env}"):
                lines += [f"![learning curves {env}]({curve})", ""]
            if plot_distillation(runs, out / distill, f"{family}/{env}"):
                lines += [f"![distillation {env}]({distill})", ""]
    if scores["family"].nunique() > 1:
        agg = iqm_table(scores, issues, "all maps", bootstrap_reps, seed)
        if not agg.empty:
            agg.to_csv(out / "aggregate_all.csv")
            lines += [
                "## Across every map of every benchmark (universality): IQM and mean, 95% CI",
                "",
                markdown(agg),
                "",
            ]
    lines += ["## Issues", ""] + ([f"- {i}" for i in issues] or ["none"]) + [""]
    (out / "issues.txt").write_text("".join(f"{i}\n" for i in issues))
    index = out / "index.md"
    index.write_text("\n".join(lines))
    return index
