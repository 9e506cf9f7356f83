"""``wattwise data import`` and ``wattwise data export``: wiring only (importers do the work).

Kept light at import time: typer only; Arrow and the importers load inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wattwise.cli_state import state

KINDS = ("greenbutton", "lcl", "redd", "powerco", "csv", "parquet")


def import_command(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="greenbutton, lcl, redd, powerco, csv or parquet."),
    paths: list[Path] = typer.Argument(..., help="Files (or a source folder) to import."),
    dataset: str | None = typer.Option(None, help="Dataset name under data_dir (default: KIND)."),
    out: Path | None = typer.Option(None, help="Dataset folder (overrides --dataset)."),
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
) -> None:
    """Import real data into canonical tables; bad rows go to quarantine with the reason."""
    from features.ingest.run import run_import

    settings = state(ctx).settings
    kind = kind.lower()
    if kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    dataset_dir = out or settings.data_dir / (dataset or kind)
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


def export_command(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="Export format: greenbutton."),
    out: Path = typer.Argument(..., help="Output file."),
    dataset: str = typer.Option("greenbutton", help="Dataset name under data_dir."),
    meter: list[str] | None = typer.Option(None, help="Only these meter ids (repeatable)."),
) -> None:
    """Export a dataset's readings (Green Button ESPI XML)."""
    from features.ingest.greenbutton import export_greenbutton

    if kind.lower() != "greenbutton":
        raise typer.BadParameter("only 'greenbutton' export is supported")
    n = export_greenbutton(state(ctx).settings.data_dir / dataset, out, meter or None)
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
