"""``wattwise train`` and ``wattwise registry``: wiring only.

``wattwise train KIND`` is one command for every registered model kind (training.kinds):
the config is the kind's for ``--data`` under configs/models (or ``--config PATH``), and the
one pipeline (training.pipeline) trains, registers and gate-promotes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from wattwise.cli_state import state
from wattwise.cli_types import DATA_HELP
from wattwise.typer_app import group, kind_group, parse_sets

if TYPE_CHECKING:
    from training.kinds import Kind


def kinds_of(ctx: Any) -> dict[str, Kind]:
    """The registered kinds (with the settings' extra ones when the settings load)."""
    from training.kinds import registry
    from wattwise.errors import WattwiseError

    try:
        settings = state(ctx).settings  # type: ignore[arg-type]
    except WattwiseError:  # a broken settings file: the command itself will say so
        settings = None
    return registry(settings)


def _help(ctx: Any, kind: str) -> str:
    return (
        f"Train {kind} ({kinds_of(ctx)[kind].summary}): tune with Optuna, track in MLflow, "
        "register, promote through the gate."
    )


def train_kind(
    ctx: typer.Context,
    data: str | None = typer.Option(
        None,
        "--data",
        metavar="NAME|PATH",
        help=DATA_HELP + " Its name picks the kind's config under configs/models "
        "(default: the config's dataset, synthetic).",
    ),
    model_config: Path | None = typer.Option(
        None, "--model-config", help="A model config YAML (instead of the dataset's)."
    ),
    trials: int | None = typer.Option(
        None,
        help="New Optuna trials this run (default: the config's tuning.trials); a resumed "
        "study keeps its earlier trials and the best of all is fitted.",
    ),
    timeout: float | None = typer.Option(None, help="Tuning time limit in seconds."),
    seed: int | None = typer.Option(None, help="Sampler seed (default: the config's)."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a config key: --set tuning.trials=3 (repeatable)."
    ),
    promote: bool = typer.Option(
        True, help="Run the promotion gate after training (kept the champion: exit 5)."
    ),
    publish: bool = typer.Option(
        True,
        help="Write the new version's outputs back to the feature store, for kinds that "
        "feed features (disaggregation: the appliances group).",
    ),
) -> None:
    """Train a model kind (the command's name), register it, promote it through the gate."""
    run_training(
        ctx,
        str(ctx.info_name),
        data,
        model_config,
        trials,
        timeout,
        seed,
        set_,
        promote,
        publish,
    )


def run_training(
    ctx: typer.Context,
    kind_name: str,
    data: str | None = None,
    config: Path | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    sets: list[str] | None = None,
    promote: bool = True,
    publish: bool = True,
) -> None:
    """``wattwise train KIND`` (and its aliases, such as ``wattwise dr train``)."""
    from features.datasets import SYNTHETIC, require, resolve_dataset
    from training.config import config_name, find_model_config, load_model_config
    from training.kinds import get_kind
    from training.pipeline import train
    from wattwise.errors import ConfigError

    settings = state(ctx).settings
    kind = get_kind(kind_name, settings)
    given = resolve_dataset(data, settings.data_dir) if data is not None else None
    path = (
        config
        if config is not None
        else find_model_config(kind.name, given.name if given else SYNTHETIC)
    )
    over = parse_sets(sets)
    if seed is not None:
        over.setdefault("tuning", {})["seed"] = seed
    cfg = load_model_config(path, settings=settings, **over)
    if cfg.kind != kind.name:
        raise ConfigError(f"{path} is a config of kind {cfg.kind!r}, not {kind.name!r}")
    ds = require(given or resolve_dataset(cfg.dataset, settings.data_dir)).path
    res = train(
        cfg,
        settings,
        dataset_dir=ds,
        trials=trials,
        timeout_s=timeout,
        promote=promote,
        kind=kind,
        config_ref=config_name(path),
    )
    typer.echo(res.render())
    if publish and kind.publish is not None:
        typer.echo(kind.publish(settings, cfg, ds, res.version))
    if res.promotion is not None:  # promotion was asked: kept the champion exits 5
        res.promotion.require_moved(res.model_name)


train_app = kind_group(
    "Train and tune a model kind (Optuna), tracked in MLflow: wattwise train KIND.",
    lambda ctx: list(kinds_of(ctx)),
    train_kind,
    _help,
)
registry_app = group("Model registry: promote behind a gate, history, rollback.")


@train_app.command("list")
def train_list(ctx: typer.Context) -> None:
    """Experiments, their best runs (by the config's metric) and the registered models with
    their aliases."""
    from training.pipeline import summarize_runs
    from training.tracking import setup

    settings = state(ctx).settings
    for exp in summarize_runs(settings):
        typer.echo("\n".join(exp.lines()))
    client = setup(settings)
    for rm in client.search_registered_models():
        aliases = ", ".join(f"@{a}=v{v}" for a, v in sorted(rm.aliases.items()))
        latest = max(
            (int(v.version) for v in client.search_model_versions(f"name='{rm.name}'")), default=0
        )
        typer.echo(f"model {rm.name}: latest v{latest}  {aliases}")


@registry_app.command("promote")
def registry_promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name (e.g. churn)."),
    version: str | None = typer.Option(None, help="Candidate version (default: @challenger)."),
) -> None:
    """Move @champion to the candidate only if it passes the gate of the config it was
    trained with (floor, then the comparison with the champion)."""
    from training.registry import candidate_gate, promote

    settings = state(ctx).settings
    cand, gate = candidate_gate(settings, name, version)
    res = promote(settings, name, gate, candidate=cand)
    verb = "promoted" if res.moved else "kept the champion"
    typer.echo(
        f"{name}: {verb} (candidate v{res.candidate}, champion v{res.champion}): {res.reason}"
    )
    res.require_moved(name)  # a scheduler must not read "kept the champion" as success


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
