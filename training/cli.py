"""``wattwise train`` and ``wattwise registry``: wiring only."""

from __future__ import annotations

from pathlib import Path

import typer

from training.disaggregation.cli import train_disaggregation_cmd
from wattwise.cli_state import state
from wattwise.typer_app import group

train_app = group("Train and tune models (Optuna), tracked in MLflow.")
registry_app = group("Model registry: promote behind a gate, history, rollback.")
train_app.command("disaggregation")(train_disaggregation_cmd)

CHURN_CONFIGS = {"synthetic": "churn", "powerco": "churn_powerco"}
TRIALS = typer.Option(None, help="Optuna trials (default: the config's).")
TIMEOUT = typer.Option(None, help="Tuning time limit in seconds.")
SEED = typer.Option(None, help="Sampler seed (default: the config's).")
PROMOTE = typer.Option(True, help="Run the promotion gate after training.")
DATA_DIR = typer.Option(
    None, "--data-dir", help="Dataset folder (default: data/<dataset of the config>)."
)


@train_app.command("churn")
def train_churn(
    ctx: typer.Context,
    trials: int | None = TRIALS,
    timeout: float | None = TIMEOUT,
    data: str = typer.Option("synthetic", help="synthetic or powerco."),
    data_dir: Path | None = DATA_DIR,
    seed: int | None = SEED,
    promote: bool = PROMOTE,
) -> None:
    """Train the churn model on a dataset, register it, and promote it if it passes the gate."""
    from training.config import load_model_config
    from training.pipeline import train
    from wattwise.errors import ConfigError

    if data not in CHURN_CONFIGS:
        raise ConfigError(f"--data must be one of {sorted(CHURN_CONFIGS)}, got {data!r}")
    over = {"tuning": {"seed": seed}} if seed is not None else {}
    cfg = load_model_config(CHURN_CONFIGS[data], **over)
    res = train(
        cfg,
        state(ctx).settings,
        dataset_dir=data_dir,
        trials=trials,
        timeout_s=timeout,
        promote=promote,
    )
    typer.echo(res.render())


@train_app.command("propensity")
def train_propensity_cmd(
    ctx: typer.Context,
    trials: int | None = TRIALS,
    timeout: float | None = TIMEOUT,
    data_dir: Path | None = DATA_DIR,
    seed: int | None = SEED,
    promote: bool = PROMOTE,
) -> None:
    """Train per-program propensity and offer-uplift models, register, gate-promote."""
    from training.config import load_model_config
    from training.pipeline import train

    over = {"tuning": {"seed": seed}} if seed is not None else {}
    cfg = load_model_config("propensity", **over)
    res = train(
        cfg,
        state(ctx).settings,
        dataset_dir=data_dir,
        trials=trials,
        timeout_s=timeout,
        promote=promote,
    )
    typer.echo(res.render())


@train_app.command("list")
def train_list(ctx: typer.Context) -> None:
    """Experiments, their best runs and the registered models with their aliases."""
    from training.tracking import setup

    settings = state(ctx).settings
    client = setup(settings)
    for exp in client.search_experiments():
        if not exp.name.startswith(settings.mlflow.experiment_prefix + "/"):
            continue
        runs = client.search_runs(
            [exp.experiment_id],
            "attributes.status = 'FINISHED' and tags.`wattwise.model` != ''",
            order_by=["attributes.start_time DESC"],
            max_results=50,
        )
        typer.echo(f"{exp.name}: {len(runs)} training runs")
        best = sorted(runs, key=lambda r: -r.data.metrics.get("test_roc_auc", float("-inf")))[:3]
        for r in best:
            m = r.data.metrics
            typer.echo(
                f"  run {r.info.run_id[:8]}  {r.info.run_name:<24} test ROC-AUC {m.get('test_roc_auc', float('nan')):.4f}"
                f"  Brier {m.get('test_brier', float('nan')):.4f}  rows {r.data.params.get('training_rows', '?')}"
            )
    for rm in client.search_registered_models():
        aliases = ", ".join(f"@{a}=v{v}" for a, v in sorted(rm.aliases.items()))
        latest = max(
            (int(v.version) for v in client.search_model_versions(f"name='{rm.name}'")), default=0
        )
        typer.echo(f"model {rm.name}: latest v{latest}  {aliases}")


def _config_for(name: str) -> object:
    from training.config import load_model_config

    return load_model_config(name)


@registry_app.command("promote")
def registry_promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name (e.g. churn)."),
    version: str | None = typer.Option(None, help="Candidate version (default: @challenger)."),
) -> None:
    """Move @champion to the candidate only if it passes the configured gate."""
    from training.registry import promote

    cfg = _config_for(name)
    res = promote(state(ctx).settings, name, cfg.promotion, candidate=version)  # type: ignore[attr-defined]
    verb = "promoted" if res.moved else "kept the champion"
    typer.echo(
        f"{name}: {verb} (candidate v{res.candidate}, champion v{res.champion}): {res.reason}"
    )
    if not res.moved:
        raise typer.Exit(3)


@registry_app.command("history")
def registry_history(
    ctx: typer.Context, name: str = typer.Argument(..., help="Registered model name.")
) -> None:
    """Every alias move of a model: when, alias, from, to, reason, metrics."""
    from training.registry import history

    rows = history(state(ctx).settings, name)
    if not rows:
        typer.echo(f"{name}: no alias moves recorded")
    for h in rows:
        m = h["metrics"]
        m = m.get("candidate", m)
        auc = f" ROC-AUC {m['roc_auc']:.4f}" if isinstance(m, dict) and "roc_auc" in m else ""
        typer.echo(
            f"{h['at']}  @{h['alias']:<12} v{h['from'] or '-'} -> v{h['to'] or '-'}{auc}  {h['reason']}"
        )


@registry_app.command("rollback")
def registry_rollback(
    ctx: typer.Context, name: str = typer.Argument(..., help="Registered model name.")
) -> None:
    """Move @champion back to the version before its last move."""
    from training.registry import rollback

    v = rollback(state(ctx).settings, name)
    typer.echo(f"{name}@champion -> v{v}")


@registry_app.command("challenger")
def registry_challenger(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version to mark as @challenger."),
) -> None:
    """Point @challenger at a version (promote compares it with @champion)."""
    from training.registry import CHALLENGER, move_alias
    from training.tracking import setup

    settings = state(ctx).settings
    move_alias(settings, setup(settings), name, CHALLENGER, version, {}, "set by hand")
    typer.echo(f"{name}@challenger -> v{version}")
