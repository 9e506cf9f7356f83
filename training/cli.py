"""``wattwise train`` and ``wattwise registry``: wiring only."""

from __future__ import annotations

from wattwise.typer_app import group

train_app = group("Train and tune models (Optuna), tracked in MLflow.")
registry_app = group("Model registry: promote behind a gate, history, rollback.")
