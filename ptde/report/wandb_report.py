"""The same comparison as a wandb report (online, logged in): one panel grid per map whose line
plot groups the project's runs by algorithm and variant (mean with a std band, x = env steps),
plus the local Markdown tables as text. Uses wandb's report API (`wandb_workspaces.reports.v2`,
the `wandb[workspaces]` extra); it cannot be tested offline and says so instead of failing late.
"""

from __future__ import annotations

from ptde.logging import wandb_logged_in


def wandb_report_unavailable() -> str | None:
    """Why no wandb report can be made here, or None when it can."""
    if not wandb_logged_in():
        return "offline (no wandb API key: WANDB_API_KEY or `wandb login`)"
    try:
        import wandb_workspaces.reports.v2  # noqa: F401
    except ImportError:
        return "wandb's report API is not installed (pip install 'wandb[workspaces]')"
    return None


def publish_report(
    project: str, entity: str | None, maps: list[tuple[str, str, str]], tables_markdown: str, title: str
) -> str:
    """Create and save the report; `maps` holds (family, env name, success metric). Returns its URL."""
    import wandb
    import wandb_workspaces.reports.v2 as wr

    entity = entity or wandb.Api().default_entity
    blocks: list = [wr.H1(title), wr.MarkdownBlock(tables_markdown)]
    for family, env, metric in maps:
        runset = wr.Runset(
            entity=entity,
            project=project,
            name=f"{family}/{env}",
            filters=f"Config('env.name') == '{env}' and Config('env.family') == '{family}'",
            groupby=[wr.Config("algo.name"), wr.Config("variant.name")],
        )
        curve = wr.LinePlot(
            title=f"{family}/{env}: test {metric}",
            x="env_steps",
            y=[f"test/{metric}"],
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )
        blocks += [wr.H2(f"{family}/{env}"), wr.PanelGrid(runsets=[runset], panels=[curve])]
    report = wr.Report(project=project, entity=entity, title=title, blocks=blocks)
    report.save()
    return report.url
