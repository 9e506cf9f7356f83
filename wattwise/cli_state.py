"""Per-invocation CLI state shared by every command group (kept apart from the root CLI so
that group modules can use it without importing each other)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer


class State:
    """Per-invocation state: global flags, the settings (loaded once on first use) and the
    catalog of model kinds.

    The catalog is built by the app shell's ``catalog_factory`` from the settings: the kinds
    registry lives above some of the command groups (``features``), so they receive it here
    instead of importing it.
    """

    def __init__(
        self,
        verbose: bool,
        settings_path: Path | None,
        catalog_factory: Callable[[Any], Any] | None = None,
    ) -> None:
        self.verbose = verbose
        self.settings_path = settings_path
        self.catalog_factory = catalog_factory
        self._settings: Any = None
        self._catalog: Any = None

    @property
    def settings(self) -> Any:
        if self._settings is None:
            from wattwise.settings import load_settings

            self._settings = load_settings(self.settings_path)
        return self._settings

    @property
    def catalog(self) -> Any:
        """The model kinds, as the app shell's factory builds them from the settings."""
        if self._catalog is None:
            if self.catalog_factory is None:
                from wattwise.errors import WattwiseError

                raise WattwiseError("no catalog of model kinds: run this through `wattwise`")
            self._catalog = self.catalog_factory(self.settings)
        return self._catalog


def state(ctx: typer.Context) -> State:
    """The :class:`State` of this invocation (commands call this to get settings)."""
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State(False, None)
    return root.obj
