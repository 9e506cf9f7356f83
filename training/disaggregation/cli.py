"""``wattwise disaggregate`` and ``wattwise train disaggregation``: wiring only."""

from __future__ import annotations

from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.errors import ConfigError

CONFIGS = {"synthetic": "disaggregation", "redd": "disaggregation_redd"}
DATA = typer.Option("synthetic", "--data", help="synthetic or redd.")
DATA_DIR = typer.Option(
    None, "--data-dir", help="Dataset folder (default: data/<dataset of the config>)."
)


def _config_name(data: str) -> str:
    if data not in CONFIGS:
        raise ConfigError(f"--data must be one of {sorted(CONFIGS)}, got {data!r}")
    return CONFIGS[data]


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


def train_disaggregation_cmd(
    ctx: typer.Context,
    data: str = DATA,
    data_dir: Path | None = DATA_DIR,
    trials: int | None = typer.Option(None, help="Optuna trials (default: the config's)."),
    timeout: float | None = typer.Option(None, help="Tuning time limit in seconds."),
    trial_seconds: float | None = typer.Option(
        None, help="Time limit of one network fit in seconds."
    ),
    export: bool = typer.Option(
        True, help="synthetic: export appliance features for every customer afterwards."
    ),
    threads: int = typer.Option(
        1, min=1, help="torch CPU threads (small networks gain little from more)."
    ),
) -> None:
    """Train the disaggregation models (synthetic or REDD), register, set aliases."""
    import torch

    from training.disaggregation.config import load_disagg_config
    from training.disaggregation.train import train_disaggregation

    torch.set_num_threads(threads)
    settings = state(ctx).settings
    cfg = load_disagg_config(_config_name(data))
    res = train_disaggregation(
        cfg,
        settings,
        dataset_dir=data_dir,
        trials=trials,
        timeout_s=timeout,
        trial_seconds=trial_seconds,
    )
    typer.echo(res.render())
    if data == "synthetic" and export:
        from training.disaggregation import service

        ds = data_dir or settings.data_dir / cfg.dataset
        typer.echo(service.export_features(settings, ds, version=res.version, model=cfg.name))
