"""``wattwise disaggregate``: wiring only (training is ``wattwise train disaggregation``).

``--data NAME|PATH`` names the dataset (features.datasets): its name picks the config under
``configs/models`` (``synthetic``: customers' interval reads; ``redd``: a REDD house file given
with ``--input``). A customer's month is checked (the month when the command line is read,
the dataset, the customer and its reads next) before the model loads, which is the slow
part; the breakdown itself is the function the scoring service's
``POST /disaggregation/breakdown`` calls (training.disaggregation.service).
"""

from __future__ import annotations

from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.cli_types import data_option, month_option
from wattwise.errors import ConfigError, DataError

KIND = "disaggregation"


def disaggregate_cmd(
    ctx: typer.Context,
    customer: str | None = typer.Argument(
        None, help="Customer id, as in the dataset's customers table (C0000042)."
    ),
    month: str | None = month_option(
        None, "--month", help="Calendar month to break down, in UTC: YYYY-MM (2024-07)."
    ),
    plot: bool = typer.Option(False, "--plot", help="Also write a stacked-area PNG."),
    plot_out: Path | None = typer.Option(
        None, "--plot-out", help="PNG path (default: reports/disaggregation/CUSTOMER_MONTH.png)."
    ),
    data: str = data_option(),
    input_file: Path | None = typer.Option(
        None, "--input", help="--data redd: a REDD house CSV (t_seconds, aggregate_W, circuits)."
    ),
    out: Path | None = typer.Option(None, "--out", help="--data redd: predictions CSV to write."),
    export_features: bool = typer.Option(
        False, "--export-features", help="Write features/appliances.parquet for every customer."
    ),
    version: str = typer.Option("champion", help="Registered version or alias to use."),
) -> None:
    """Appliance breakdown of a customer's month, the feature export, or a REDD file."""
    from features.datasets import resolve_dataset
    from training.config import find_model_config
    from training.disaggregation import service
    from training.disaggregation.config import load_disagg_config

    settings = state(ctx).settings
    ds = resolve_dataset(data, settings.data_dir)
    try:
        cfg = load_disagg_config(find_model_config(KIND, ds.name))
    except ConfigError:
        if not ds.exists:  # most likely a typo in the name or the path
            raise DataError(f"--data {data}: no dataset folder at {ds.path}") from None
        raise
    if cfg.data == "redd":
        if input_file is None or out is None:
            raise ConfigError("--data redd needs --input FILE and --out FILE")
        rows = service.disaggregate_redd_file(
            settings, input_file, out, version=version, model=cfg.model_name
        )
        typer.echo(f"wrote {rows:,} rows of predictions to {out}")
        return
    if not ds.exists:
        raise DataError(f"--data {data}: no dataset folder at {ds.path}")
    if export_features:
        res = service.export_features(settings, ds.path, version=version, cfg=cfg)
        typer.echo(res)
        if customer is None:
            return
    if customer is None or month is None:
        raise ConfigError("give CUSTOMER and --month YYYY-MM (or --export-features)")
    bd = service.customer_breakdown(
        settings, ds.path, customer, month, version=version, model=cfg.model_name
    )
    typer.echo(bd.render())
    if plot:
        path = plot_out or settings.reports_dir / "disaggregation" / f"{customer}_{month}.png"
        service.plot_breakdown(bd, path)
        typer.echo(f"plot: {path}")
