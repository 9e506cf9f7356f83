"""``wattwise disaggregate``: wiring only (training is ``wattwise train disaggregation``)."""

from __future__ import annotations

from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.errors import ConfigError

DATA = typer.Option("synthetic", "--data", help="Dataset of the model: synthetic or redd.")
DATA_DIR = typer.Option(
    None, "--data-dir", help="Dataset folder (default: data/<dataset of the config>)."
)


def _config_name(data: str) -> str:
    """The disaggregation config (under configs/models) of a dataset."""
    from training.config import find_model_config

    return find_model_config("disaggregation", data).stem


def disaggregate_cmd(
    ctx: typer.Context,
    customer: str | None = typer.Argument(None, help="Customer id (synthetic or imported data)."),
    month: str | None = typer.Option(None, "--month", help="Month to break down, YYYY-MM."),
    plot: bool = typer.Option(False, "--plot", help="Also write a stacked-area PNG."),
    plot_out: Path | None = typer.Option(
        None, "--plot-out", help="PNG path (default: reports/disaggregation/CUSTOMER_MONTH.png)."
    ),
    data: str = DATA,
    data_dir: Path | None = DATA_DIR,
    input_file: Path | None = typer.Option(
        None, "--input", help="--data redd: a REDD house CSV (t_seconds, aggregate_W, circuits)."
    ),
    out: Path | None = typer.Option(None, "--out", help="--data redd: predictions CSV to write."),
    export_features: bool = typer.Option(
        False, "--export-features", help="Write features/appliances.parquet for every customer."
    ),
    version: str = typer.Option("champion", help="Registered version or alias to use."),
) -> None:
    """Appliance breakdown of a customer-month, the feature export, or a REDD file."""
    from training.disaggregation import service

    settings = state(ctx).settings
    name = _config_name(data)
    if data == "redd":
        if input_file is None or out is None:
            raise ConfigError("--data redd needs --input FILE and --out FILE")
        rows = service.disaggregate_redd_file(settings, input_file, out, version=version)
        typer.echo(f"wrote {rows:,} rows of predictions to {out}")
        return
    ds = data_dir or settings.data_dir / "synthetic"
    if export_features:
        res = service.export_features(settings, ds, version=version, model=name)
        typer.echo(res)
        if customer is None:
            return
    if customer is None or month is None:
        raise ConfigError("give CUSTOMER and --month YYYY-MM (or --export-features)")
    bd = service.customer_breakdown(settings, ds, customer, month, version=version, model=name)
    typer.echo(bd.render())
    if plot:
        path = plot_out or settings.reports_dir / "disaggregation" / f"{customer}_{month}.png"
        service.plot_breakdown(bd, path)
        typer.echo(f"plot: {path}")
