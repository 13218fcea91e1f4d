"""`python -m ptde.report source=<multirun folder> [out=<folder>] [only=[<pattern>,...]]` or `source=wandb project=ptde`.

Writes the report folder (index.md, table_*.md/csv, curves_*.png, distill_*.png, aggregate_*.csv)
and prints the path of index.md. `wandb_report=true` also builds the wandb report: saved to the
project when logged in, else its spec is written as wandb_report.json in the report folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ptde.cli import prepare_command_line
from ptde.config import register_configs, register_entry_configs
from ptde.config.resolved import to_container
from ptde.report.build import build_report
from ptde.report.runs import dedupe, load_source, load_wandb_project
from ptde.report.wandb_report import wandb_report

register_configs()
register_entry_configs()


@hydra.main(config_path="../../conf", config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    c = to_container(cfg)
    try:
        if c["source"] == "wandb":
            if c["only"] is not None:
                raise RuntimeError("only= picks run folders under a source folder; a wandb project has none")
            every, issues = load_wandb_project(c["project"], c["entity"], unique=False)
            out = Path(c["out"] or "report")
        else:
            every, issues = load_source(Path(c["source"]), unique=False, only=c["only"])
            out = Path(c["out"] or Path(c["source"]) / "report")
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"ptde.report: {exc}", file=sys.stderr)
        sys.exit(2)
    runs = dedupe(every, issues)  # the tables: one run per algo, env and seed
    records, issues = runs
    if not records:
        print(f"ptde.report: no usable runs in {c['source']}:\n  " + "\n  ".join(issues), file=sys.stderr)
        sys.exit(1)
    title = f"wandb {c['entity'] or ''}/{c['project']}" if c["source"] == "wandb" else c["source"]
    index = build_report(
        runs, out, c["bootstrap_reps"], c["seed"], title=title, threshold=c["threshold"], paper=c["paper"]
    )
    for issue in issues:
        print(f"skipped: {issue}", file=sys.stderr)
    print(f"report: {index}")
    if c["wandb_report"]:
        try:
            print(wandb_report(c["project"], c["entity"], every, f"PTDE report: {title}", out))
        except RuntimeError as exc:
            print(f"ptde.report: no wandb report, {exc}; the local report is in {out}", file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    prepare_command_line("report")
    main()
