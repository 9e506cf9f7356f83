"""``wattwise serve`` and ``score``: wiring only."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.typer_app import group

serve_app = group("Serve registered models over HTTP (BentoML).")
score_app = group("Batch scoring from the offline store or a file.")

# Sources whose files can be scored directly: importer kind and registered model.
FILE_SOURCES = {"powerco": ("powerco", "churn_powerco")}
CONFIG_HELP = "Serving config YAML (default: $WW_SERVING_CONFIG or configs/serving.yaml)."


def _serving_config(path: Path | None):  # type: ignore[no-untyped-def]
    from serving.config import load_serving_config

    return load_serving_config(path)


def _offline(
    ctx: typer.Context,
    kind: str,
    as_of: datetime | None,
    out: Path,
    config: Path | None,
    reasons: bool = False,
) -> None:
    import pandas as pd

    from serving.batch import score_offline

    res = score_offline(
        state(ctx).settings,
        _serving_config(config),
        kind,
        out,
        as_of=pd.Timestamp(as_of) if as_of else None,
        reasons=reasons,
    )
    typer.echo(res.render())


@score_app.command("churn")
def score_churn(
    ctx: typer.Context,
    out: Path = typer.Option(
        ..., help="Output CSV or parquet: id, probability, decision, reasons."
    ),
    as_of: datetime | None = typer.Option(
        None, "--as-of", help="Score every customer from the offline store at this date."
    ),
    data: str | None = typer.Option(None, help="Source of an input file to score: powerco."),
    input: list[Path] | None = typer.Option(  # noqa: A002
        None, "--input", help="File(s) of the source to score (with --data)."
    ),
    model: str | None = typer.Option(None, help="Registered model (default: by --data)."),
    config: Path | None = typer.Option(None, help=CONFIG_HELP),
    reasons: bool = typer.Option(
        False, help="Offline: add reason codes (the serving config's reason_method, as online)."
    ),
) -> None:
    """Score with the registered @champion churn model: every customer of the serving dataset
    from the offline store (``--as-of``, default the newest features), or a new file
    (``--data powerco --input FILE``)."""
    from wattwise.errors import ConfigError

    if not input:
        if data is not None:
            raise ConfigError("--data needs --input FILE")
        _offline(ctx, "churn", as_of, out, config, reasons)
        return
    from serving.batch import score_file

    if data not in FILE_SOURCES:
        raise ConfigError(f"--data must be one of {sorted(FILE_SOURCES)}, got {data!r}")
    source, default_model = FILE_SOURCES[data]
    scores = score_file(state(ctx).settings, model or default_model, source, list(input), out)
    typer.echo(
        f"scored {len(scores):,} customers -> {out} (mean probability {scores.probability.mean():.3f})"
    )


@score_app.command("propensity")
def score_propensity(
    ctx: typer.Context,
    out: Path = typer.Option(..., help="Output CSV or parquet: per program p_offer, uplift."),
    as_of: datetime | None = typer.Option(None, "--as-of", help="Feature date (default: newest)."),
    config: Path | None = typer.Option(None, help=CONFIG_HELP),
) -> None:
    """Program propensity and uplift of every customer (no score without marketing consent)."""
    _offline(ctx, "propensity", as_of, out, config)


@serve_app.command("start")
def serve_start(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, help=CONFIG_HELP),
    host: str | None = typer.Option(None, help="Bind address (default: the config's)."),
    port: int | None = typer.Option(None, help="Port (default: the config's, 3000)."),
) -> None:
    """Serve every configured @champion model until Ctrl+C (default 127.0.0.1:3000)."""
    import os
    import subprocess

    from serving.config import ENV_FILE
    from serving.server import serve_command

    cfg = _serving_config(config)
    env = dict(os.environ)
    if config is not None:
        env[ENV_FILE] = str(config.resolve())
    s = state(ctx).settings
    typer.echo(
        f"serving {', '.join(cfg.models)} from {s.data_dir / cfg.dataset} on "
        f"http://{host or cfg.host}:{port or cfg.port} (auth {'on' if cfg.auth.enabled else 'OFF'})"
    )
    raise typer.Exit(subprocess.call(serve_command(host or cfg.host, port or cfg.port), env=env))


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
    config: Path | None = typer.Option(None, help=CONFIG_HELP),
) -> None:
    """Copy every @champion into the BentoML model store and build the Bento (bentofile.yaml)."""
    from serving.bento import build_bento

    tag, models = build_bento(state(ctx).settings, _serving_config(config))
    for m in models:
        typer.echo(f"  model {m}")
    typer.echo(f"built Bento {tag}")
