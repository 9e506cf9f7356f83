"""``wattwise data`` and ``wattwise features``: wiring only, logic lives in the modules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from features.datasets import Dataset, require, resolve_dataset
from features.ingest.cli import export_command, import_command
from wattwise.cli_state import state
from wattwise.cli_types import allow_empty_option, data_option, day_option
from wattwise.typer_app import group

data_app = group("Canonical tables: generate the synthetic utility, import real data.")
features_app = group("Feature pipeline and Feast: build, apply, materialize, training sets.")

data_app.command("import")(import_command)
data_app.command("export")(export_command)


@data_app.command("generate")
def generate_command(
    ctx: typer.Context,
    world: Path | None = typer.Option(None, help="World YAML (default: configs/world.yaml)."),
    customers: int | None = typer.Option(None, help="Number of customers."),
    start: date | None = day_option(None, "--start", help="First day (UTC)."),
    days: int | None = typer.Option(None, help="Number of days."),
    interval: int | None = typer.Option(None, help="Interval minutes: 15, 30 or 60."),
    regions: str | None = typer.Option(None, help="Comma-separated region names from the config."),
    seed: int | None = typer.Option(None, help="Random seed."),
    data: str = data_option(help="Dataset to write: a NAME under the data dir or a PATH."),
    scenario: str | None = typer.Option(
        None, help="Inject a shift: heat_wave, price_rise, ev_wave or broken_meters."
    ),
    scenario_start: date | None = day_option(
        None, "--scenario-start", help="When the scenario starts (default: 3/4 into the data)."
    ),
    workers: int | None = typer.Option(None, help="Processes (default: all cores)."),
) -> None:
    """Generate the synthetic utility: canonical tables plus ground truth, as parquet."""
    from features.synth.config import load_world_config
    from features.synth.generate import generate

    st = state(ctx)
    cfg = load_world_config(
        world,
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
    out_dir = resolve_dataset(data, st.settings.data_dir).path
    summary = generate(cfg, out_dir, show_progress=True)
    typer.echo(summary.render())


def dataset_of(ctx: typer.Context, data: str) -> Dataset:
    """The existing dataset ``--data`` names (a name under the data dir, or a path)."""
    return require(resolve_dataset(data, state(ctx).settings.data_dir))


@features_app.command("build")
def features_build(
    ctx: typer.Context,
    data: str = data_option(),
    segment_fit_end: date | None = day_option(
        None, "--segment-fit-end", help="Fit load-shape segments on snapshots before this date."
    ),
) -> None:
    """Compute the feature tables (DuckDB) from a dataset's canonical tables."""
    from features.attributes import build_attributes
    from features.pipeline import build_features

    ds = dataset_of(ctx, data).path
    summary = build_features(ds, segment_fit_end=segment_fit_end)
    typer.echo(summary.render())
    n = build_attributes(ds)  # a source's own attributes (PowerCo's table); 0 when none
    if n:
        typer.echo(f"attributes: {n:,} rows")


@features_app.command("apply")
def features_apply(ctx: typer.Context, data: str = data_option()) -> None:
    """Register entities, feature views and the models' FeatureServices in the dataset's
    Feast registry."""
    from features.services import FeatureCatalog
    from features.store import apply

    catalog: FeatureCatalog = state(ctx).catalog
    for line in apply(dataset_of(ctx, data).path, catalog.feature_services()):
        typer.echo(f"applied {line}")


@features_app.command("materialize")
def features_materialize(ctx: typer.Context, data: str = data_option()) -> None:
    """Load the latest feature values into the online store (SQLite)."""
    from features.store import materialize

    lo, hi = materialize(dataset_of(ctx, data).path)
    typer.echo(f"materialized features from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}")


@features_app.command("training-set")
def features_training_set(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="A model kind (churn, propensity, ...)."),
    as_of: date | None = day_option(
        None, "--as-of", help="Only labels fully observed by this date."
    ),
    out: Path | None = typer.Option(None, help="Write the training set here (parquet)."),
    data: str = data_option(),
    allow_empty: bool = allow_empty_option(),
) -> None:
    """Point-in-time join of a model kind's labels with its FeatureService."""
    from features.services import FeatureCatalog
    from features.store import training_set
    from wattwise.errors import EmptyResultError, nothing

    catalog: FeatureCatalog = state(ctx).catalog
    labels, service_name = catalog.label_source(model)
    ds = dataset_of(ctx, data)
    try:
        df = training_set(ds.path, labels, service_name, as_of)
    except EmptyResultError as exc:  # no labels: exit 4, or 0 with --allow-empty
        typer.echo(nothing(str(exc), allow_empty))
        return
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(out, index=False)
        typer.echo(f"wrote {len(df):,} rows × {df.shape[1]} columns to {out}")
    else:
        typer.echo(df.head(20).to_string())
        typer.echo(f"... {len(df):,} rows × {df.shape[1]} columns")


@data_app.command("schema")
def schema_command() -> None:
    """Print the canonical schema (every table, column, type and meaning) as markdown."""
    from features.schema import render_markdown

    typer.echo(render_markdown())
