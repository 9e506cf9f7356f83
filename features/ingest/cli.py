"""``wattwise data import`` and ``wattwise data export``: wiring only (importers do the work).

Kept light at import time: typer only; Arrow and the importers load inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.cli_types import DATA_HELP, allow_empty_option

KINDS = ("greenbutton", "lcl", "redd", "powerco", "csv", "parquet")


def import_command(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="greenbutton, lcl, redd, powerco, csv or parquet."),
    paths: list[Path] = typer.Argument(..., help="Files (or a source folder) to import."),
    data: str | None = typer.Option(
        None, "--data", metavar="NAME|PATH", help=DATA_HELP + " Default: KIND."
    ),
    tz: str = typer.Option("UTC", help="csv/parquet: zone of naive timestamps (IANA name)."),
    unit: str | None = typer.Option(
        None,
        help="csv/parquet: Wh, kWh or MWh (default kWh); greenbutton: unit when a feed "
        "has no ReadingType (Wh, kWh, W, therm, m3).",
    ),
    meter_col: str = typer.Option("meter_id", help="csv/parquet: meter id column."),
    ts_col: str = typer.Option("timestamp", help="csv/parquet: interval start column."),
    kwh_col: str = typer.Option("kwh", help="csv/parquet: energy column."),
    interval: int | None = typer.Option(
        None, help="csv/parquet: interval minutes (default: inferred)."
    ),
    local_times: bool = typer.Option(
        False, help="greenbutton: feed times are local clock, convert with LocalTimeParameters."
    ),
    allow_empty: bool = allow_empty_option(),
) -> None:
    """Import real data into canonical tables; bad rows go to quarantine with the reason."""
    from features.datasets import resolve_dataset
    from features.ingest.run import run_import
    from wattwise.errors import nothing

    settings = state(ctx).settings
    kind = kind.lower()
    if kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    dataset_dir = resolve_dataset(data or kind, settings.data_dir).path
    report = run_import(
        kind,
        paths,
        dataset_dir,
        tz=tz,
        unit=unit,
        meter_col=meter_col,
        ts_col=ts_col,
        kwh_col=kwh_col,
        interval=interval,
        local_times=local_times,
        shared_dir=settings.shared_data_dir,
    )
    _print_report(report)
    if report.empty:
        typer.echo(nothing(f"import {kind}: 0 rows loaded into {dataset_dir}", allow_empty))


def export_command(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="Export format: greenbutton."),
    out: Path = typer.Argument(..., help="Output file."),
    data: str = typer.Option("greenbutton", "--data", metavar="NAME|PATH", help=DATA_HELP),
    meter: list[str] | None = typer.Option(None, help="Only these meter ids (repeatable)."),
) -> None:
    """Export a dataset's readings (Green Button ESPI XML)."""
    from features.datasets import require, resolve_dataset
    from features.ingest.greenbutton import export_greenbutton

    if kind.lower() != "greenbutton":
        raise typer.BadParameter("only 'greenbutton' export is supported")
    ds = require(resolve_dataset(data, state(ctx).settings.data_dir))
    n = export_greenbutton(ds.path, out, meter or None)
    typer.echo(f"wrote {n} readings to {out}")


def _print_report(report) -> None:  # noqa: ANN001 - ImportReport, imported lazily
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"import {report.kind} -> {report.dataset_dir}")
    for col in ("table", "read", "loaded", "quarantined", "reasons / notes"):
        t.add_column(col, justify="right" if col in ("read", "loaded", "quarantined") else "left")
    for name, read, loaded, q, text in report.rows():
        t.add_row(name, f"{read:,}", f"{loaded:,}", f"{q:,}", text)
    Console().print(t)
