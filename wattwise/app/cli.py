"""The root ``wattwise`` command: global options, the command groups, and error handling.

Each group lives beside its code (``features.cli``, ``training.cli``, ``serving.cli``) and only
wires options to typed functions; heavy libraries are imported inside commands so that
``--help`` is instant.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import click
import typer
from rich.console import Console

from wattwise.cli_state import State
from wattwise.errors import WattwiseError
from wattwise.log import setup_logging

err_console = Console(stderr=True)

app = typer.Typer(
    name="wattwise",
    help="ML experimentation and model serving for energy utilities' customer analytics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"wattwise {version('wattwise')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs and tracebacks."),
    _show_version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print the version and exit."
    ),
    settings: Path | None = typer.Option(
        None, "--settings", help="Settings YAML (default: configs/settings.yaml)."
    ),
) -> None:
    """wattwise: ingest → features (Feast) → train (Optuna, MLflow) → serve (BentoML) → monitor."""
    ctx.obj = State(verbose, settings, catalog_factory=_catalog)
    setup_logging(verbose=verbose)


def _catalog(settings: object) -> object:
    """The model kinds, for command groups below the kinds registry (``features``)."""
    from training.kinds import KindCatalog

    return KindCatalog(settings)  # type: ignore[arg-type]


# Wiring only: each group module is light (typer and our own code; no ML libraries).
from features.cli import data_app, features_app  # noqa: E402
from serving.cli import score_app, serve_app  # noqa: E402
from serving.monitoring.cli import drift_app  # noqa: E402
from training.cli import registry_app, train_app  # noqa: E402
from training.disaggregation.cli import disaggregate_cmd  # noqa: E402
from training.dr.cli import dr_app  # noqa: E402
from wattwise.app.demo import demo_app  # noqa: E402

app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(train_app, name="train")
app.add_typer(registry_app, name="registry")
app.add_typer(serve_app, name="serve")
app.add_typer(score_app, name="score")
app.add_typer(dr_app, name="dr")
app.add_typer(drift_app, name="drift")
app.add_typer(demo_app, name="demo")
app.command("disaggregate")(disaggregate_cmd)


def _exception_types(name: str) -> tuple[type[BaseException], ...]:
    """Click's exception class ``name`` and typer's vendored copy of it (typer >= 0.20)."""
    found: list[type[BaseException]] = [getattr(click.exceptions, name)]
    try:
        from typer._click import exceptions as vendored  # type: ignore[import-not-found]

        found.append(getattr(vendored, name))
    except (ImportError, AttributeError):
        pass
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; user errors print one line, ``--verbose`` adds the traceback."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args or "-v" in args
    # OpenMP threads (LightGBM, torch) that spin while waiting make a busy 2-core machine
    # crawl (100 rounds: 190 s spinning vs 1 s passive under load); set before they load
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    # MLflow draws a progress bar for every artifact it reads: noise in a command's output
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        rc = app(args=args, prog_name="wattwise", standalone_mode=False)
        if isinstance(rc, int) and rc:  # typer.Exit(code) returns the code without standalone
            sys.exit(rc)
    except _exception_types("Exit") as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except _exception_types("ClickException") as exc:
        exc.show()  # type: ignore[attr-defined]
        sys.exit(getattr(exc, "exit_code", 2))
    except _exception_types("Abort") + (KeyboardInterrupt,):
        err_console.print("aborted")
        sys.exit(130)
    except WattwiseError as exc:
        if verbose:
            traceback.print_exc()
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug, not a user error: still one line unless --verbose
        if verbose:
            traceback.print_exc()
        msg = str(exc).splitlines()[0] if str(exc) else ""
        err_console.print(
            f"[red]error:[/red] {type(exc).__name__}: {msg} (run with --verbose for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
