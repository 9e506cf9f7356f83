"""``wattwise drift``: wiring only (logic in serving.monitoring.service / validate)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.cli_types import allow_empty_option, day_option
from wattwise.errors import EXIT_ALERT, nothing
from wattwise.typer_app import group

drift_app = group("Drift and performance monitoring (Evidently).")

_CONFIG = typer.Option(
    None, "--monitoring-config", help="Monitoring YAML (default: configs/monitoring.yaml)."
)


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    from wattwise.errors import ConfigError

    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"bad time {text!r}: use ISO 8601, e.g. 2024-07-08T00:00") from exc
    from datetime import UTC

    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


@drift_app.command("report")
def report_cmd(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name in the prediction log (churn)."),
    window: str | None = typer.Option(None, help="Window before --end: 7d, 24h (default: config)."),
    end: str | None = typer.Option(None, help="Window end, ISO time UTC (default: now)."),
    version: str | None = typer.Option(
        None, help="Model version (default: the one that served last)."
    ),
    registered_name: str | None = typer.Option(
        None, help="Registered model name (default: MODEL)."
    ),
    no_html: bool = typer.Option(False, "--no-html", help="JSON summary only."),
    config: Path | None = _CONFIG,
    allow_empty: bool = allow_empty_option(),
) -> None:
    """Drift of one window of traffic against the version's training reference.

    Exit code 0: no drift; 3: drift found (an alert was sent); 4: too few predictions in the
    window for a report (``--allow-empty``: 0); 2: a user error.
    """
    from serving.monitoring.config import load_monitoring_config
    from serving.monitoring.service import NoPredictionsError, drift_report, predlog_root

    cfg = load_monitoring_config(config)
    try:
        out = drift_report(
            state(ctx).settings,
            cfg,
            model,
            window=window,
            end=_when(end),
            version=version,
            registered_name=registered_name,
            html=not no_html,
        )
    except NoPredictionsError as exc:
        typer.echo(nothing(str(exc), allow_empty))
        return
    typer.echo(out.summary.render())
    typer.echo(f"html:    {out.html or '(none)'}\nsummary: {out.json}\nindex:   {out.index}")
    if out.summary.status == "insufficient":
        typer.echo(
            nothing(
                f"{model}: too few predictions in the window for a drift report "
                f"(see {out.json}); is the service logging to "
                f"{predlog_root(state(ctx).settings, cfg)}?",
                allow_empty,
            )
        )
    if out.summary.drift_found:
        raise SystemExit(EXIT_ALERT)  # typer.Exit is swallowed by main()


@drift_app.command("watch")
def watch_cmd(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="One round, then exit (for cron)."),
    iterations: int = typer.Option(0, help="Stop after N rounds (0: run until stopped)."),
    config: Path | None = _CONFIG,
) -> None:
    """Report every configured model every ``watch.every``; alerts go to the log and webhook.

    With --once or --iterations the exit code is 3 when any round found drift.
    """
    from serving.monitoring.config import load_monitoring_config
    from serving.monitoring.watch import watch

    cfg = load_monitoring_config(config)
    rounds = 1 if once else iterations
    found = watch(state(ctx).settings, cfg, rounds=rounds, echo=typer.echo)
    if found and rounds:
        raise SystemExit(EXIT_ALERT)  # typer.Exit is swallowed by main()


@drift_app.command("performance")
def performance_cmd(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name in the prediction log."),
    labels: Path = typer.Option(
        ..., help="CSV/parquet: customer_id (or customer_key), label, optional ts."
    ),
    since: str | None = typer.Option(None, help="Only predictions from this ISO time."),
    version: str | None = typer.Option(None, help="Model version (default: the last served)."),
    registered_name: str | None = typer.Option(
        None, help="Registered model name (default: MODEL)."
    ),
    horizon: str = typer.Option("90d", help="A label counts for predictions this long before it."),
    config: Path | None = _CONFIG,
) -> None:
    """Performance over time once labels arrive, against the metrics at training.

    Exit code 3 when a metric fell further than configured (an alert was sent).
    """
    import pandas as pd

    from serving.monitoring.config import load_monitoring_config
    from serving.monitoring.service import performance_report
    from wattwise.errors import DataError

    if not labels.is_file():
        raise DataError(f"labels file not found: {labels}")
    frame = pd.read_parquet(labels) if labels.suffix == ".parquet" else pd.read_csv(labels)
    cfg = load_monitoring_config(config)
    res = performance_report(
        state(ctx).settings,
        cfg,
        model,
        frame,
        key=_predlog_key(),
        since=_when(since),
        version=version,
        registered_name=registered_name,
        horizon=horizon,
    )
    typer.echo(res.render())
    if res.alerts:
        raise SystemExit(EXIT_ALERT)  # typer.Exit is swallowed by main()


def _predlog_key() -> bytes | None:
    """The prediction log's key from the serving config (None when it has none)."""
    from serving.config import load_serving_config
    from wattwise.errors import ConfigError

    try:
        return load_serving_config().predlog.resolve_key()
    except ConfigError:
        return None


@drift_app.command("validate")
def validate_cmd(
    seeds: str = typer.Option("1,3", help="Comma-separated held-out seeds: one utility each."),
    calibration_seeds: str = typer.Option(
        "100", help="Seeds whose unshifted windows set per-column thresholds ('' : config only)."
    ),
    customers: int = typer.Option(1000, help="Customers per world."),
    t0: date = day_option(
        "2024-07-01", "--t0", help="Scenario start (the shifted weeks follow it)."
    ),
    parts: int = typer.Option(
        1, help="Disjoint customer groups per week (windows per week; 1: all the week's traffic)."
    ),
    margin: float = typer.Option(
        1.25, help="Calibrated threshold = margin x largest normal score."
    ),
    usage_margin: float | None = typer.Option(
        None, help="Margin of the usage-view limits (default: --margin)."
    ),
    workdir: Path = typer.Option(Path("/tmp/wattwise-drift-validation"), help="Worlds (cached)."),
    out: Path = typer.Option(Path("reports/drift_validation.json"), help="Per-window results."),
    config: Path | None = _CONFIG,
) -> None:
    """Detection and false-alarm rates on the scenario worlds (see serving/monitoring/validate.py)."""
    from serving.monitoring.config import load_monitoring_config
    from serving.monitoring.validate import run_validation, thresholds_yaml, write_result

    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    cfg = load_monitoring_config(config)
    res = run_validation(
        workdir,
        cfg,
        seeds=ints(seeds),
        calibration_seeds=ints(calibration_seeds),
        customers=customers,
        t0=t0,
        parts=parts,
        margin=margin,
        usage_margin=usage_margin,
    )
    typer.echo(res.render())
    typer.echo(f"windows: {write_result(res, out)}")
    if res.thresholds:
        th = out.with_name(out.stem + "_thresholds.yaml")
        th.write_text(thresholds_yaml(res))
        typer.echo(f"calibrated thresholds (for configs/monitoring.yaml): {th}")


@drift_app.command("index")
def index_cmd(ctx: typer.Context) -> None:
    """Rebuild ``<reports_dir>/index.html`` from the reports on disk."""
    from serving.monitoring.reports import write_index

    typer.echo(write_index(state(ctx).settings.reports_dir))
