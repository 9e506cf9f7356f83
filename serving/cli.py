"""``wattwise serve`` and ``score``: wiring only."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer

from wattwise.cli_state import state
from wattwise.cli_types import allow_empty_option, day_option
from wattwise.typer_app import group, kind_group

serve_app = group("Serve registered models over HTTP (BentoML).")
CONFIG_HELP = "Serving config YAML (default: $WW_SERVING_CONFIG or configs/serving.yaml)."


def _serving_config(path: Path | None):  # type: ignore[no-untyped-def]
    from serving.config import load_serving_config

    return load_serving_config(path)


def _batch_kinds(ctx: Any) -> list[str]:
    """Kinds scored in batch (with the settings' extra ones when the settings load)."""
    from training.kinds import registry
    from wattwise.errors import WattwiseError

    try:
        settings = state(ctx).settings  # type: ignore[arg-type]
    except WattwiseError:
        settings = None
    return [name for name, k in registry(settings).items() if k.batch]


def score_kind(
    ctx: typer.Context,
    out: Path = typer.Option(..., help="Output CSV or parquet: id, the model's outputs."),
    as_of: date | None = day_option(
        None,
        "--as-of",
        help="Score every customer from the offline store at this date (default: the newest "
        "snapshot of the model's features).",
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        metavar="NAME|PATH",
        help="Dataset: without --input, the one whose offline store is scored (default: the "
        "serving config's); with --input, the source of the file (its importer, e.g. powerco).",
    ),
    input: list[Path] | None = typer.Option(  # noqa: A002
        None, "--input", help="File(s) of the source to score (with --data)."
    ),
    model: str | None = typer.Option(
        None, help="Registered model for --input (default: the kind's config for --data)."
    ),
    serving_config: Path | None = typer.Option(None, "--serving-config", help=CONFIG_HELP),
    reasons: bool = typer.Option(
        False, "--reasons", help="Binary kinds: add reason codes (the serving config's method)."
    ),
    allow_empty: bool = allow_empty_option(),
) -> None:
    """Score with the kind's registered @champion: every customer of the serving dataset from
    the offline store (``--as-of``), or a new file (``--data SOURCE --input FILE``)."""
    import pandas as pd

    from features.datasets import require, resolve_dataset
    from wattwise.errors import ConfigError, nothing

    kind = str(ctx.info_name)
    settings = state(ctx).settings
    if not input:
        from serving.batch import score_offline

        res = score_offline(
            settings,
            _serving_config(serving_config),
            kind,
            out,
            as_of=pd.Timestamp(as_of) if as_of else None,
            dataset_dir=require(resolve_dataset(data, settings.data_dir)).path if data else None,
            reasons=reasons,
            allow_empty=allow_empty,
        )
        typer.echo(res.render())
        return
    from serving.batch import score_file
    from training.config import find_model_config, load_model_config

    if data is None:
        raise ConfigError("--input needs --data SOURCE (the importer of the file, e.g. powerco)")
    source = resolve_dataset(data, settings.data_dir).name
    name = model or load_model_config(find_model_config(kind, source), settings=settings).model_name
    scores = score_file(settings, name, source, list(input), out)
    if scores.empty:
        typer.echo(nothing(f"{input[0]}: no customers to score", allow_empty))
        return
    first = scores.columns[1]
    typer.echo(
        f"scored {len(scores):,} customers with {name}@champion -> {out} "
        f"(mean {first} {pd.to_numeric(scores[first], errors='coerce').mean():.3f})"
    )


score_app = kind_group(
    "Batch scoring of a model kind, from the offline store or a file: wattwise score KIND.",
    _batch_kinds,
    score_kind,
    lambda ctx, kind: f"Score {kind} with its registered @champion (offline store or a file).",
)


@serve_app.command("start", short_help="Serve every configured @champion model until stopped.")
def serve_start(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--serving-config", help=CONFIG_HELP),
    host: str | None = typer.Option(None, help="Bind address (default: the config's)."),
    port: int | None = typer.Option(None, help="Port (default: the config's, 3000)."),
) -> None:
    """Serve every configured @champion model (default 127.0.0.1:3000) until Ctrl+C or
    SIGTERM, which stop it gracefully: no new connections, the requests in flight finish,
    every service process exits, exit code 0. What still runs after the serving config's
    shutdown_grace_s (default 25 s), or at a second Ctrl+C, is killed: exit code 130."""
    import os

    from serving.config import ENV_FILE, served_kinds
    from serving.server import run_supervised, serve_command
    from training.kinds import registry

    cfg = _serving_config(config)
    env = dict(os.environ)
    if config is not None:
        env[ENV_FILE] = str(config.resolve())
    s = state(ctx).settings
    typer.echo(
        f"serving {', '.join(served_kinds(cfg, registry(s)))} from {s.data_dir / cfg.dataset} on "
        f"http://{host or cfg.host}:{port or cfg.port} (auth {'on' if cfg.auth.enabled else 'OFF'})"
    )
    cmd = serve_command(host or cfg.host, port or cfg.port)
    raise typer.Exit(run_supervised(cmd, env, cfg.shutdown_grace_s))


@serve_app.command("key")
def serve_key(
    name: str = typer.Option(..., help="Who the key is for (shown in logs and errors)."),
    admin: bool = typer.Option(False, help="May call /admin/* endpoints."),
) -> None:
    """Make a new API key; print it once, and the hashed entry for the config."""
    import secrets

    from serving.config import hash_key

    key = secrets.token_urlsafe(32)
    typer.echo(f"key (give to the caller, not stored anywhere): {key}")
    typer.echo("config entry (auth.keys, or WW_SERVING_AUTH__KEYS):")
    typer.echo(f"  - {{name: {name}, sha256: {hash_key(key)}, admin: {str(admin).lower()}}}")


@serve_app.command("build")
def serve_build(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--serving-config", help=CONFIG_HELP),
) -> None:
    """Copy every @champion into the BentoML model store and build the Bento (bentofile.yaml)."""
    from serving.bento import build_bento

    tag, models = build_bento(state(ctx).settings, _serving_config(config))
    for m in models:
        typer.echo(f"  model {m}")
    typer.echo(f"built Bento {tag}")
