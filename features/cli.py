"""``wattwise data`` and ``wattwise features``: wiring only, logic lives in the modules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from features.ingest.cli import export_command, import_command
from wattwise.cli_state import state
from wattwise.typer_app import group

data_app = group("Canonical tables: generate the synthetic utility, import real data.")
features_app = group("Feature pipeline and Feast: build, apply, materialize, training sets.")

data_app.command("import")(import_command)
data_app.command("export")(export_command)


@data_app.command("generate")
def generate_command(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, help="World YAML (default: configs/world.yaml)."),
    customers: int | None = typer.Option(None, help="Number of customers."),
    start: date | None = typer.Option(None, formats=["%Y-%m-%d"], help="First day (UTC)."),
    days: int | None = typer.Option(None, help="Number of days."),
    interval: int | None = typer.Option(None, help="Interval minutes: 15, 30 or 60."),
    regions: str | None = typer.Option(None, help="Comma-separated region names from the config."),
    seed: int | None = typer.Option(None, help="Random seed."),
    out: Path | None = typer.Option(None, help="Output dataset folder (default: data/synthetic)."),
    scenario: str | None = typer.Option(
        None, help="Inject a shift: heat_wave, price_rise, ev_wave or broken_meters."
    ),
    scenario_start: date | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="When the scenario starts (default: 3/4 into the data)."
    ),
    workers: int | None = typer.Option(None, help="Processes (default: all cores)."),
) -> None:
    """Generate the synthetic utility: canonical tables plus ground truth, as parquet."""
    from features.synth.config import load_world_config
    from features.synth.generate import generate

    st = state(ctx)
    cfg = load_world_config(
        config,
        customers=customers,
        start=start,
        days=days,
        interval_minutes=interval,
        regions=regions.split(",") if regions else None,
        seed=seed,
        scenario=scenario,
        scenario_start=scenario_start,
        workers=workers,
    )
    out_dir = out or st.settings.data_dir / "synthetic"
    summary = generate(cfg, out_dir, show_progress=True)
    typer.echo(summary.render())


@data_app.command("schema")
def schema_command() -> None:
    """Print the canonical schema (every table, column, type and meaning) as markdown."""
    from features.schema import render_markdown

    typer.echo(render_markdown())
