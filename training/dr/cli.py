"""``wattwise dr``: wiring only."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.cli_types import data_option, day_option
from wattwise.typer_app import group

dr_app = group("Demand response: plan events, settle them, compare baselines.")

CONFIG_OPT = typer.Option(None, "--dr-config", help="DR config YAML (default: configs/dr.yaml).")


def _ds(ctx: typer.Context, data: str) -> Path:
    from features.datasets import require, resolve_dataset

    return require(resolve_dataset(data, state(ctx).settings.data_dir)).path


def _cfg(config: Path | None, holidays: str | None = None):  # type: ignore[no-untyped-def]
    from features.dr.config import load_dr_config

    cfg = load_dr_config(config)
    if holidays:
        cfg = cfg.model_copy(
            update={"baselines": cfg.baselines.model_copy(update={"holidays": holidays})}
        )
    return cfg


def _hours(text: str) -> tuple[int, int]:
    from wattwise.errors import WattwiseError

    try:
        a, b = (int(x) for x in text.split("-"))
    except ValueError:
        raise WattwiseError(
            f"--hours {text!r}: expected START-END local hours, e.g. 16-19"
        ) from None
    return a, b


@dr_app.command("baselines")
def baselines_command(
    ctx: typer.Context,
    data: str = data_option(),
    config: Path | None = CONFIG_OPT,
    placebo: bool = typer.Option(True, help="Evaluate on placebo (non-event) weekdays."),
    events: bool = typer.Option(
        True, help="Evaluate on event days against the true counterfactual (synthetic)."
    ),
    customers: int | None = typer.Option(None, help="Only the first N customers (placebo)."),
    opendsm: int = typer.Option(
        0, help="Also fit opendsm's hourly model on N homes (slow: ~10-40 s a home)."
    ),
    out: Path | None = typer.Option(None, help="Write the long frames (parquet) into this folder."),
) -> None:
    """Compare the baselines: CV(RMSE), NMBE, median APE per customer and for the portfolio."""
    from training.dr.compare import compare_baselines

    for line in compare_baselines(
        _ds(ctx, data),
        _cfg(config),
        placebo=placebo,
        events=events,
        customers=customers,
        opendsm=opendsm,
        out=out,
    ):
        typer.echo(line)


@dr_app.command("settle")
def settle_command(
    ctx: typer.Context,
    event: list[str] = typer.Option(None, help="Event id (repeatable)."),
    all_events: bool = typer.Option(False, "--all", help="Settle every DR event."),
    data: str = data_option(),
    config: Path | None = CONFIG_OPT,
) -> None:
    """Measure performance after events; write settlements and the dr_performance features."""
    from features.dr.settle import settle_events
    from wattwise.errors import WattwiseError

    if not event and not all_events:
        raise WattwiseError("name an event with --event ID, or settle all with --all")
    res = settle_events(_ds(ctx, data), _cfg(config), None if all_events else list(event))
    for s in res[-10:]:
        typer.echo(s.render())
    if len(res) > 10:
        typer.echo(f"... {len(res)} events settled")


@dr_app.command("effect")
def effect_command(
    ctx: typer.Context,
    kind: list[str] = typer.Option(
        ["dr"], help="Event kinds to measure (dr, price_high, price_low)."
    ),
    exclude_kind: list[str] = typer.Option(
        None, help="Kinds whose days are never comparison days (default: --kind)."
    ),
    holidays: str | None = typer.Option(None, help="Holiday calendar override: us or none."),
    data: str = data_option(),
    config: Path | None = CONFIG_OPT,
) -> None:
    """Effect of events on called customers (DiD vs control / comparison group, every baseline)."""
    from features.dr.performance import estimate_effect

    est, _ = estimate_effect(
        _ds(ctx, data),
        _cfg(config, holidays),
        tuple(kind),
        tuple(exclude_kind) if exclude_kind else None,
    )
    typer.echo(est.render())


@dr_app.command("train")
def train_command(
    ctx: typer.Context,
    trials: int | None = typer.Option(None, help="Optuna trials (default: the model config)."),
    data: str = data_option(),
) -> None:
    """Train the response model (registered as dr_response): `wattwise train dr_response`."""
    from training.cli import run_training

    run_training(ctx, "dr_response", data=data, trials=trials)


@dr_app.command("plan")
def plan_command(
    ctx: typer.Context,
    day: date = day_option(..., "--date", help="Event day (local)."),
    hours: str = typer.Option("16-19", help="Local hours START-END (end exclusive)."),
    target_mw: float = typer.Option(..., help="Reduction target, MW."),
    region: str | None = typer.Option(None, help="Only this region."),
    confidence: float | None = typer.Option(
        None, help="Confidence of meeting the target (default: config)."
    ),
    incentive: float | None = typer.Option(None, help="Incentive per kWh (default: config)."),
    temp: float | None = typer.Option(
        None, help="Temperature forecast °C (default: the dataset's weather)."
    ),
    out: Path | None = typer.Option(None, help="Write the selected customers (csv)."),
    data: str = data_option(),
    config: Path | None = CONFIG_OPT,
) -> None:
    """Smallest set of enrolled customers whose expected reduction meets the target."""
    from training.dr.plan import plan_event

    p = plan_event(
        _ds(ctx, data),
        state(ctx).settings,
        _cfg(config),
        day,
        _hours(hours),
        target_mw,
        region=region,
        confidence=confidence,
        incentive_per_kwh=incentive,
        temperature_c=temp,
    )
    typer.echo(p.render())
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        p.selected.to_csv(out, index=False)
        typer.echo(f"wrote {len(p.selected):,} customers to {out}")
    else:
        typer.echo(p.selected.head(10).to_string(index=False))
