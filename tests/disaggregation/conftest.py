"""Fixtures for disaggregation tests: one thread for torch, tiny and fast network settings."""

from __future__ import annotations

import pytest

# A network small enough to train in a second or two on the tiny world (the behaviour under
# test is the pipeline, not accuracy; accuracy is measured in benchmarks and the docs).
TINY_NET = {
    "window_hours": 12,
    "channels": 4,
    "hidden": 8,
    "crop": 96,
    "batch_size": 8,
    "epochs": 3,
    "steps_per_epoch": 8,
    "patience": 2,
}
TINY_SPACE = {
    "window_hours": {"type": "categorical", "choices": [6, 12]},
    "channels": {"type": "categorical", "choices": [4]},
    "learning_rate": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
}


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    import torch

    torch.set_num_threads(1)


# the same network as estimator arguments (a window in readings rather than hours)
TINY_EST = {**{k: v for k, v in TINY_NET.items() if k != "window_hours"}, "window": 25}
