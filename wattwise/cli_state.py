"""Per-invocation CLI state shared by every command group (kept apart from the root CLI so
that group modules can use it without importing each other)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


class State:
    """Per-invocation state: global flags and the settings, loaded once on first use."""

    def __init__(self, verbose: bool, settings_path: Path | None) -> None:
        self.verbose = verbose
        self.settings_path = settings_path
        self._settings: Any = None

    @property
    def settings(self) -> Any:
        if self._settings is None:
            from wattwise.settings import load_settings

            self._settings = load_settings(self.settings_path)
        return self._settings


def state(ctx: typer.Context) -> State:
    """The :class:`State` of this invocation (commands call this to get settings)."""
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State(False, None)
    return root.obj
