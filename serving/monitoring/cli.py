"""``wattwise drift``: wiring only."""

from __future__ import annotations

from wattwise.typer_app import group

drift_app = group("Drift and performance monitoring (Evidently).")
