"""``wattwise serve`` and ``score``: wiring only."""

from __future__ import annotations

from pathlib import Path

import typer

from wattwise.cli_state import state
from wattwise.typer_app import group

serve_app = group("Serve registered models over HTTP (BentoML).")
score_app = group("Batch scoring from the offline store or a file.")

# Sources whose files can be scored directly: importer kind and registered model.
FILE_SOURCES = {"powerco": ("powerco", "churn_powerco")}


@score_app.command("churn")
def score_churn(
    ctx: typer.Context,
    data: str = typer.Option(..., help="Source of the input file: powerco."),
    input: list[Path] = typer.Option(..., "--input", help="File(s) of the source to score."),  # noqa: A002
    out: Path = typer.Option(
        ..., help="Output CSV or parquet: id, probability, decision, reasons."
    ),
    model: str | None = typer.Option(None, help="Registered model (default: by --data)."),
) -> None:
    """Score a new file with the registered @champion churn model of its source."""
    from serving.batch import score_file
    from wattwise.errors import ConfigError

    if data not in FILE_SOURCES:
        raise ConfigError(f"--data must be one of {sorted(FILE_SOURCES)}, got {data!r}")
    source, default_model = FILE_SOURCES[data]
    scores = score_file(state(ctx).settings, model or default_model, source, list(input), out)
    typer.echo(
        f"scored {len(scores):,} customers -> {out} (mean probability {scores.probability.mean():.3f})"
    )
