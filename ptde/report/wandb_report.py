"""The same comparison as a wandb report, built with wandb's report API (`wandb_workspaces.reports.v2`,
the `wandb-report` extra): per map a panel grid of the map's runs, filtered to the report's wandb
groups and grouped by group (one group = one config without the seed = one table cell, so the
seeds of one algorithm are one line with a std band), holding the test-score curve against env
steps, the KD points (teacher against student after stage 2) and the PRR; then the local tables
as Markdown and a runs table of every group of the source.

The Report object is built without a server. Logged in, it is saved to the project and its URL
printed; offline, its spec (the JSON model the server stores) is written next to the local report
and nothing is uploaded.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ptde.loggers.wandb_run import wandb_logged_in
from ptde.report.runs import RunRecord

SPEC_FILE = "wandb_report.json"


def _api():
    try:
        import wandb_workspaces.reports.v2 as wr
    except ImportError:
        raise RuntimeError(
            "wandb's report API is not installed: make install (the wandb-report extra) or pip install wandb-workspaces"
        ) from None
    return wr


def _group_filter(groups: list[str]) -> str:
    return "Group in [" + ", ".join(repr(g) for g in groups) + "]"


def build_wandb_report(project: str, entity: str, records: list[RunRecord], tables_markdown: str, title: str) -> Any:
    """The Report of `records` (runs of `project`); runs without a wandb group are left out of the panels."""
    wr = _api()
    groups = sorted({r.group for r in records if r.group})
    blocks: list = [
        wr.H1(title),
        wr.P(f"{len(records)} runs in {len(groups)} wandb groups (a group is one config over its seeds)."),
        wr.MarkdownBlock(tables_markdown),
    ]
    maps = sorted({(r.family, r.env, r.metric) for r in records})
    for family, env, metric in maps:
        here = sorted({r.group for r in records if r.group and (r.family, r.env) == (family, env)})
        if not here:
            continue
        runset = wr.Runset(name=f"{family}/{env}", filters=_group_filter(here), groupby=["group"])
        panels = [
            wr.LinePlot(
                title=f"{family}/{env}: test {metric}",
                x="env_steps",
                y=[f"test/{metric}"],
                groupby_aggfunc="mean",
                groupby_rangefunc="stddev",
            ),
            wr.BarPlot(
                title=f"{family}/{env}: KD, teacher (centralized) vs student (decentralized) {metric}",
                metrics=[f"eval/centralized_{metric}", f"eval/decentralized_{metric}"],
                groupby="Group",
                groupby_aggfunc="mean",
                groupby_rangefunc="stddev",
            ),
            wr.BarPlot(
                title=f"{family}/{env}: PRR (student / teacher)",
                metrics=["eval/prr"],
                groupby="Group",
                groupby_aggfunc="mean",
                groupby_rangefunc="stddev",
            ),
        ]
        blocks += [wr.H2(f"{family}/{env}"), wr.PanelGrid(runsets=[runset], panels=panels)]
    if groups:
        columns = ["run:group", "run:state"] + [f"summary:test/{m}" for m in sorted({r.metric for r in records})]
        table = wr.Runset(name="runs", filters=_group_filter(groups), pinned_columns=[*columns, "summary:eval/prr"])
        blocks += [wr.H2("Runs"), wr.PanelGrid(runsets=[table], panels=[])]
    return wr.Report(project=project, entity=entity, title=title[:128], blocks=blocks)


def report_spec(report: Any) -> str:
    """The report's JSON model, as `Report.save()` sends it."""
    return report._to_model().model_dump_json(by_alias=True, exclude_none=True, indent=1)


def tables_markdown(out: Path) -> str:
    """The local report's tables (`table_*.md` in `out`), as the wandb report's text block."""
    return "\n\n".join(f"## {t.stem.removeprefix('table_')}\n\n{t.read_text()}" for t in sorted(out.glob("table_*.md")))


@contextmanager
def _fixed_ids() -> Iterator[None]:
    """wandb_workspaces names panels and run sets from the global `random`: seeded here, so the same runs
    give the same spec (a rebuilt committed report diffs only where its runs changed), and the caller's
    stream is put back after."""
    _api()  # imported first: its import draws from `random` too, once per process
    saved = random.getstate()
    random.seed(0)
    try:
        yield
    finally:
        random.setstate(saved)


def write_report_spec(records: list[RunRecord], out: Path, title: str, project: str = "ptde", entity: str = "") -> Path:
    """The wandb report of `records` as a spec in `out`, never uploaded: a campaign's committed report
    carries it, so anyone who syncs the campaign's runs to a project can build the same report there."""
    with _fixed_ids():
        spec = report_spec(build_wandb_report(project, entity, records, tables_markdown(out), title))
    path = out / SPEC_FILE
    path.write_text(spec + "\n")
    return path


def wandb_report(project: str, entity: str | None, records: list[RunRecord], title: str, out: Path) -> str:
    """Save the report when logged in (returns its URL), else write its spec into `out`; says which.
    Its text block is the local report's tables in `out`."""
    if not wandb_logged_in():
        path = write_report_spec(records, out, title, project, entity or "")
        return f"wandb report not uploaded (offline: no API key); its spec is in {path}"
    import wandb

    entity = entity or wandb.Api().default_entity
    with _fixed_ids():
        report = build_wandb_report(project, entity, records, tables_markdown(out), title)
        spec = report_spec(report)
    (out / SPEC_FILE).write_text(spec + "\n")
    report.save()
    return f"wandb report: {report.url}"
