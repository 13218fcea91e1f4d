"""`python -m ptde.report source=<multirun folder> [out=<folder>]` or `source=wandb project=ptde`.

Writes the report folder (index.md, table_*.md/csv, curves_*.png, distill_*.png, aggregate_*.csv)
and prints the path of index.md. `wandb_report=true` also publishes a wandb report when online.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ptde.cli import prepare_command_line
from ptde.config import register_configs, register_entry_configs
from ptde.report.build import build_report
from ptde.report.runs import load_source, load_wandb_project
from ptde.report.wandb_report import publish_report, wandb_report_unavailable
from ptde.runtime import to_container

register_configs()
register_entry_configs()


@hydra.main(config_path="../../conf", config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    c = to_container(cfg)
    try:
        if c["source"] == "wandb":
            runs = load_wandb_project(c["project"], c["entity"])
            out = Path(c["out"] or "report")
        else:
            runs = load_source(Path(c["source"]))
            out = Path(c["out"] or Path(c["source"]) / "report")
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"ptde.report: {exc}", file=sys.stderr)
        sys.exit(2)
    records, issues = runs
    if not records:
        print(f"ptde.report: no usable runs in {c['source']}:\n  " + "\n  ".join(issues), file=sys.stderr)
        sys.exit(1)
    title = f"wandb {c['entity'] or ''}/{c['project']}" if c["source"] == "wandb" else c["source"]
    index = build_report(runs, out, c["bootstrap_reps"], c["seed"], title=title)
    for issue in issues:
        print(f"skipped: {issue}", file=sys.stderr)
    print(f"report: {index}")
    if c["wandb_report"]:
        why_not = wandb_report_unavailable()
        if why_not:
            print(f"ptde.report: no wandb report, {why_not}; the local report is in {out}")
            return
        maps = sorted({(r.family, r.env, r.metric) for r in records})
        url = publish_report(c["project"], c["entity"], maps, index.read_text(), f"PTDE report: {c['source']}")
        print(f"wandb report: {url}")


if __name__ == "__main__":
    prepare_command_line("report")
    main()
