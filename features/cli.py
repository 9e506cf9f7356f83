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


def _dataset_dir(ctx: typer.Context, dataset: str, data_dir: Path | None) -> Path:
    return data_dir or state(ctx).settings.data_dir / dataset


DATASET_OPT = typer.Option("synthetic", help="Dataset name under the data dir.")
DATA_DIR_OPT = typer.Option(None, "--data-dir", help="Dataset folder (overrides --dataset).")


@features_app.command("build")
def features_build(
    ctx: typer.Context,
    dataset: str = DATASET_OPT,
    data_dir: Path | None = DATA_DIR_OPT,
    segment_fit_end: date | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Fit load-shape segments on snapshots before this date."
    ),
) -> None:
    """Compute the feature tables (DuckDB) from a dataset's canonical tables."""
    from features.attributes import build_attributes
    from features.pipeline import build_features

    ds = _dataset_dir(ctx, dataset, data_dir)
    summary = build_features(ds, segment_fit_end=segment_fit_end)
    typer.echo(summary.render())
    n = build_attributes(ds)  # a source's own attributes (PowerCo's table); 0 when none
    if n:
        typer.echo(f"attributes: {n:,} rows")


@features_app.command("apply")
def features_apply(
    ctx: typer.Context, dataset: str = DATASET_OPT, data_dir: Path | None = DATA_DIR_OPT
) -> None:
    """Register entities, feature views and the models' FeatureServices in the dataset's
    Feast registry."""
    from features.services import FeatureCatalog
    from features.store import apply

    catalog: FeatureCatalog = state(ctx).catalog
    for line in apply(_dataset_dir(ctx, dataset, data_dir), catalog.feature_services()):
        typer.echo(f"applied {line}")


@features_app.command("materialize")
def features_materialize(
    ctx: typer.Context, dataset: str = DATASET_OPT, data_dir: Path | None = DATA_DIR_OPT
) -> None:
    """Load the latest feature values into the online store (SQLite)."""
    from features.store import materialize

    lo, hi = materialize(_dataset_dir(ctx, dataset, data_dir))
    typer.echo(f"materialized features from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}")


@features_app.command("training-set")
def features_training_set(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="A model kind (churn, propensity, ...)."),
    as_of: date | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Only labels fully observed by this date."
    ),
    out: Path | None = typer.Option(None, help="Write the training set here (parquet)."),
    dataset: str = DATASET_OPT,
    data_dir: Path | None = DATA_DIR_OPT,
) -> None:
    """Point-in-time join of a model kind's labels with its FeatureService."""
    from features.services import FeatureCatalog
    from features.store import training_set

    catalog: FeatureCatalog = state(ctx).catalog
    labels, service_name = catalog.label_source(model)
    df = training_set(_dataset_dir(ctx, dataset, data_dir), labels, service_name, as_of)
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
