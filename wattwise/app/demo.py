"""``wattwise demo``: the main job end to end on the embedded defaults.

Stages: generate the synthetic utility → build features, register them in Feast and
materialize the online store → train, register and gate-promote churn and propensity models.
→ serve them over HTTP and score a few customers → a drift report on a shifted week. Each
stage prints what it produced; what libraries print (warnings, progress bars) goes to
``reports/demo.log`` (``--verbose`` shows it instead). The demo ends with the commands to run
next (:func:`next_steps`), each of which works as printed (the docs tests run them).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.log import output_to

demo_app = typer.Typer(
    help="Run the main job end to end on the embedded defaults.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def next_steps(churn_version: str | None) -> list[tuple[str, str]]:
    """The commands a user runs after the demo (run from the project folder), with what each
    does; the bracketed notes say how each ends (the docs tests read them)."""
    steps = [
        (
            "make serve",
            "the scoring service on http://127.0.0.1:3000, Ctrl+C stops it [serves :3000]",
        ),
    ]
    if churn_version is not None:
        steps.append(
            (
                f".venv/bin/wattwise drift report churn --window 7d --version {churn_version}",
                "this demo's price-rise week, HTML under reports/ [exit 3: drift]",
            )
        )
    steps += [
        (
            ".venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db "
            "--default-artifact-root mlruns/artifacts",
            "runs and registry on http://127.0.0.1:5000 [serves :5000]",
        ),
        ("make notebooks", "the notebooks in JupyterLab on http://127.0.0.1:8888 [serves :8888]"),
    ]
    return steps


def _stage(n: int, total: int, title: str) -> float:
    typer.secho(f"\n[{n}/{total}] {title}", bold=True)
    return time.perf_counter()


@demo_app.callback()
def demo(
    ctx: typer.Context,
    customers: int = typer.Option(2000, help="Customers in the synthetic utility."),
    days: int = typer.Option(
        760,
        help="Days of interval data (25 months by default: churn here follows the seasons, "
        "and with 13 months the embargoed training snapshots cover January-July only).",
    ),
    trials: int = typer.Option(4, help="Optuna trials per model (small budget for the demo)."),
    source: str = typer.Option(
        "synthetic",
        "--data",
        metavar="synthetic|lcl",
        help="synthetic, or lcl: import the London households from ../shared/data and run the "
        "feature stage on them (no training: the source has no labels).",
    ),
) -> None:
    """Generate a synthetic utility, build features, train and promote models; report each stage."""
    from features.attributes import build_attributes
    from features.pipeline import build_features
    from features.store import apply, materialize
    from features.synth.config import load_world_config
    from features.synth.generate import generate
    from training.config import load_model_config
    from training.kinds import feature_services
    from training.pipeline import train
    from training.registry import history

    st = state(ctx)
    settings = st.settings
    quiet: Path | None = None if st.verbose else settings.reports_dir / "demo.log"
    if quiet is not None and quiet.exists():
        quiet.unlink()
    if source not in ("synthetic", "lcl"):
        from wattwise.errors import ConfigError

        raise ConfigError(f"--data must be synthetic or lcl, got {source!r}")
    ds = settings.data_dir / source
    total = 6 if source == "synthetic" else 2
    if source == "lcl":
        from features.ingest.run import run_import

        shared = settings.shared_data_dir
        t = _stage(1, total, f"import the London households (LCL) from {shared}")
        inputs = [shared / "lcl_smart_meters", shared / "lcl_tou_tariff", shared / "london_weather"]
        with output_to(quiet):
            report = run_import("lcl", inputs, ds)
        for name, read, loaded, quarantined, _ in report.rows():
            typer.echo(
                f"  {name:<20} read {read:>10,}  loaded {loaded:>10,}  quarantined {quarantined:,}"
            )
    else:
        t = _stage(1, total, f"synthetic utility: {customers:,} customers × {days} days")
        summary = generate(
            load_world_config(customers=customers, days=days), ds, show_progress=True
        )
        typer.echo(summary.render())

    t = _stage(2, total, "features: DuckDB pipeline → Feast (offline DuckDB, online SQLite)")
    with output_to(quiet):
        fsum = build_features(ds)
        build_attributes(ds)
    typer.echo(fsum.render())
    with output_to(quiet):
        applied = apply(ds, feature_services(settings))
    typer.echo(
        f"Feast: applied {len(applied)} objects ({', '.join(a for a in applied if 'Service' in a)})"
    )
    with output_to(quiet):
        lo, hi = materialize(ds)
    typer.echo(
        f"online store materialized {lo:%Y-%m-%d}..{hi:%Y-%m-%d} in {time.perf_counter() - t:.1f} s"
    )

    if source == "lcl":
        typer.echo(
            "LCL has no churn or enrollment labels: training stages run on the synthetic utility."
        )
        return

    t = _stage(3, total, f"train churn ({trials} Optuna trials) → MLflow → registry gate")
    with output_to(quiet):
        churn = train(
            load_model_config("churn"), settings, dataset_dir=ds, trials=trials, config_ref="churn"
        )
    typer.echo(churn.render())

    t = _stage(4, total, f"train propensity and offer uplift ({max(1, trials // 2)} trials)")
    with output_to(quiet):
        prop = train(
            load_model_config("propensity"),
            settings,
            dataset_dir=ds,
            trials=max(1, trials // 2),
            config_ref="propensity",
        )
    typer.echo(prop.render())

    t = _stage(5, total, "serve the @champion models over HTTP (BentoML), score, stop")
    from serving.demo import http_smoke

    with output_to(quiet):
        smoke = http_smoke(settings, ds, 5)
    typer.echo(smoke)

    t = _stage(6, total, "monitoring: drift report on a shifted week of churn traffic")
    from serving.monitoring.demo import shifted_week_report

    with output_to(quiet):
        html = shifted_week_report(settings)
    typer.echo(f"drift report (Evidently HTML): {html}")
    typer.echo(f"report index: {settings.reports_dir / 'index.html'}")

    typer.secho("\nregistry history (churn)", bold=True)
    with output_to(quiet):
        moves = history(settings, "churn")[-5:]
    for h in moves:
        typer.echo(f"  {h['at']} @{h['alias']}: v{h['from'] or '-'} -> v{h['to']}  {h['reason']}")
    if quiet is not None:
        typer.echo(f"\nlibrary output (warnings, progress bars): {quiet}")
    typer.secho("\nnext, from this folder:", bold=True)
    champion = next((str(h["to"]) for h in reversed(moves) if h["alias"] == "champion"), None)
    for cmd, what in next_steps(champion):
        typer.echo(f"  {cmd}   # {what}")
    import warnings

    # Feast's metrics files are closed by the interpreter at exit, not by Feast: not ours to
    # print after the handover
    warnings.simplefilter("ignore", ResourceWarning)
