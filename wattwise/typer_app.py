"""Factories for command groups so that every group behaves the same (help, no-args).

:func:`kind_group` makes a group whose commands are the registered model kinds, built on
first use (``wattwise train churn``, ``wattwise score propensity``): one function serves
every kind, and the kinds (built-in or added in the settings) are looked up when the command
runs, so that neither a new kind nor ``--help`` needs a list of kinds in the CLI. The group
knows nothing of kinds: the layer that owns them passes ``kinds`` (names, given the
invocation's context) and the command's function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup


def group(help_text: str) -> typer.Typer:
    """A typer group that shows its help when called without a command."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def kind_group(
    help_text: str,
    kinds: Callable[[Any], list[str]],
    command: Callable[..., Any],
    command_help: Callable[[Any, str], str],
) -> typer.Typer:
    """A typer group with a command per kind (``kinds(ctx)``), each calling ``command``;
    the kind is ``ctx.info_name`` in it. Commands added to the group the usual way come
    first (``wattwise train list``)."""

    class Group(TyperGroup):
        # typer >= 0.20 runs on its vendored click: its Context and Command types
        def list_commands(self, ctx: Any) -> list[str]:
            fixed = super().list_commands(ctx)
            return [*fixed, *(k for k in kinds(ctx) if k not in fixed)]

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            found = super().get_command(ctx, cmd_name)
            if found is not None or cmd_name not in kinds(ctx):
                return found
            one = typer.Typer(
                add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None
            )
            one.command(cmd_name, help=command_help(ctx, cmd_name))(command)
            return typer.main.get_command(one)

    return typer.Typer(
        cls=Group,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``["tuning.trials=3", "estimator.num_leaves=15"]`` → nested overrides (YAML values)."""
    import yaml

    from wattwise.config import deep_merge
    from wattwise.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. tuning.trials=3")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node: Any = value
        for part in reversed(key.strip().split(".")):
            node = {part: node}
        out = deep_merge(out, node)
    return out
