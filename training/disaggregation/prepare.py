"""Training data for disaggregation, split the way NILM research evaluates.

Synthetic utility: the sub-metered panel's homes are split into train / valid / test homes
(the test homes are never seen: NILM's unseen-home protocol). REDD: one house, the first
``train_share`` of its days train (the last ``valid_share`` of those validate), the rest
test.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.disaggregation.config import DisaggConfig
from training.disaggregation.data import ReddHouse, Series, load_redd_house, load_series
from wattwise.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Aggregate windows X ``(n, T)`` and targets Y ``(n, T, A)`` (W) per split."""

    appliances: list[str]
    X: dict[str, np.ndarray]
    Y: dict[str, np.ndarray]
    ids: dict[str, list[str]] = field(default_factory=dict)
    interval_minutes: float = 30.0
    description: str = ""
    series: Series | None = None  # synthetic: the panel's grid (for monthly sums)
    # epoch seconds (UTC) of every reading, shared by all windows of a split (the synthetic
    # panel's common grid); None where absolute time is unknown (REDD's relative seconds)
    times: np.ndarray | None = None

    def fingerprint(self) -> str:
        """Content hash of inputs and targets (keys the Optuna study)."""
        import hashlib

        h = hashlib.sha256(",".join(self.appliances).encode())
        for k in ("train", "valid", "test"):
            h.update(np.ascontiguousarray(np.nan_to_num(self.X[k])).tobytes())
            h.update(np.ascontiguousarray(np.nan_to_num(self.Y[k])).tobytes())
        return h.hexdigest()[:16]


def split_homes(
    ids: list[str], valid_share: float, test_share: float, seed: int
) -> dict[str, np.ndarray]:
    """Disjoint index sets of homes (at least one home in each)."""
    n = len(ids)
    if n < 3:
        raise DataError(f"need at least 3 sub-metered homes for an unseen-home split, have {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_te = max(1, round(test_share * n))
    n_va = max(1, round(valid_share * n))
    return {
        "test": np.sort(perm[:n_te]),
        "valid": np.sort(perm[n_te : n_te + n_va]),
        "train": np.sort(perm[n_te + n_va :]),
    }


def prepare_synthetic(
    dataset_dir: Path, cfg: DisaggConfig, max_homes: int | None = None
) -> Prepared:
    """Panel homes' metered load (input) and true appliance loads (targets), split by home."""
    from training.disaggregation.oracle import appliance_targets, panel_meters

    meters = panel_meters(dataset_dir)
    if max_homes is not None:
        meters = meters[:max_homes]
    series = load_series(dataset_dir, meters)
    Y = appliance_targets(dataset_dir, series, cfg.appliances)
    # intervals with neither a read nor truth teach nothing
    Y[np.isnan(series.power_w)] = np.nan
    parts = split_homes(series.meter_ids, cfg.split.valid_share, cfg.split.test_share, cfg.seed)
    ids = {k: [series.meter_ids[i] for i in v] for k, v in parts.items()}
    return Prepared(
        list(cfg.appliances),
        {k: series.power_w[v] for k, v in parts.items()},
        {k: Y[v] for k, v in parts.items()},
        ids,
        float(series.interval_minutes),
        f"homes: {len(ids['train'])} train / {len(ids['valid'])} valid / {len(ids['test'])} "
        f"test (unseen), {series.n_steps} intervals of {series.interval_minutes} min",
        series,
        series.times_s,
    )


def time_split(house: ReddHouse, cfg: DisaggConfig) -> dict[str, slice]:
    """First ``train_share`` of whole days train (their last ``valid_share`` validates)."""
    steps_per_day = 86_400 // cfg.resample_seconds
    n = len(house.aggregate_w)
    days = n / steps_per_day
    train_days = max(1, math.floor(cfg.split.train_share * days + 0.5))
    cut = min(n - 1, train_days * steps_per_day)
    valid_days = max(1, round(cfg.split.valid_share * train_days))
    vcut = max(steps_per_day // 2, cut - valid_days * steps_per_day)
    return {"train": slice(0, vcut), "valid": slice(vcut, cut), "test": slice(cut, n)}


def prepare_house(house: ReddHouse, cfg: DisaggConfig, name: str = "house") -> Prepared:
    """One REDD house, split in time."""
    parts = time_split(house, cfg)
    X = {k: house.aggregate_w[s][None, :] for k, s in parts.items()}
    Y = {k: house.appliances_w[s][None, :, :].copy() for k, s in parts.items()}
    for k in parts:
        Y[k][np.isnan(X[k])] = np.nan
    spd = 86_400 / cfg.resample_seconds
    desc = ", ".join(f"{k} {len(house.aggregate_w[s]) / spd:.2f} d" for k, s in parts.items())
    return Prepared(
        list(cfg.appliances),
        X,
        Y,
        {k: [name] for k in parts},
        cfg.resample_seconds / 60.0,
        f"{name}: first {cfg.split.train_share:.0%} of days train ({desc})",
    )


def prepare_redd(dataset_dir: Path, cfg: DisaggConfig) -> Prepared:
    """REDD house imported into ``highres_power``, resampled and split in time."""
    house = load_redd_house(dataset_dir, resample_s=cfg.resample_seconds)
    return prepare_house(house, cfg, dataset_dir.name)
