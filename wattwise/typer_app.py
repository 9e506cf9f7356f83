"""One factory for command groups so that every group behaves the same (help, no-args)."""

from __future__ import annotations

import typer


def group(help_text: str) -> typer.Typer:
    """A typer group that shows its help when called without a command."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
