"""Training sets for the pipeline: fingerprint, feature columns, split, season weights."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.config import ModelConfig, SplitConfig
from wattwise.errors import DataError

log = logging.getLogger(__name__)
KEYS = ("customer_id", "meter_id", "premise_id", "event_timestamp", "created_timestamp")


def _is_list_column(s: pd.Series) -> bool:
    first = s.dropna().head(1)
    return s.dtype == object and len(first) == 1 and isinstance(first.iloc[0], list | np.ndarray)


def fingerprint(df: pd.DataFrame) -> str:
    """A content hash of the training set (columns and values, in row order)."""
    h = hashlib.sha256(",".join(map(str, df.columns)).encode())
    for c in df.columns:
        s = df[c]
        if _is_list_column(s):
            h.update(np.concatenate([np.asarray(v, float) for v in s.dropna()]).tobytes())
            continue
        if s.dtype == object:
            s = s.astype("string")
        h.update(pd.util.hash_pandas_object(s, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def feature_columns(df: pd.DataFrame, cfg: ModelConfig, labels: list[str]) -> list[str]:
    """Model inputs: all but keys, timestamps, labels, excluded, list-valued, all-null columns.

    ``exclude_features`` entries may be shell patterns (``shape_h*``).
    """
    from fnmatch import fnmatchcase

    drop = set(KEYS) | set(labels)
    cols = [
        c
        for c in df.columns
        if c not in drop
        and not any(fnmatchcase(c, pat) for pat in cfg.exclude_features)
        and not _is_list_column(df[c])
        and df[c].notna().any()
    ]
    if not cols:
        raise DataError("the training set has no usable feature columns")
    return cols


@dataclass
class Split:
    train: np.ndarray  # boolean masks over the training-set rows
    valid: np.ndarray
    test: np.ndarray
    description: str


def season_weights(ts: pd.Series, target: pd.Series, scale_months: float) -> np.ndarray:
    """``exp(-d / scale_months)`` per row, ``d`` the distance in calendar months (0-6, around
    the year) from the row's month to the nearest month of ``target``: a model of seasonal
    behaviour learns most from the same season of earlier years."""
    month = pd.to_datetime(ts, utc=True).dt.month.to_numpy()
    targets = np.unique(pd.to_datetime(target, utc=True).dt.month.to_numpy())
    if targets.size == 0:
        return np.ones(len(month))
    diff = np.abs(month[:, None] - targets[None, :]) % 12
    d = np.minimum(diff, 12 - diff).min(axis=1)
    return np.exp(-d / scale_months)


def _hash_unit(ids: pd.Series, seed: int) -> np.ndarray:
    h = pd.util.hash_pandas_object(ids.astype(str) + f"|{seed}", index=False).to_numpy()
    return (h % 10_000) / 10_000.0


def split(df: pd.DataFrame, y: np.ndarray, cfg: SplitConfig, seed: int) -> Split:
    """Time-based (train on earlier snapshots) or stratified split; see :class:`SplitConfig`."""
    n = len(df)
    if cfg.kind == "time":
        snaps = np.sort(df["event_timestamp"].unique())
        need = cfg.valid_snapshots + cfg.test_snapshots + 1
        if len(snaps) < need:
            raise DataError(
                f"a time split needs at least {need} snapshots, the training set has {len(snaps)}; "
                "use split.kind: stratified for single-snapshot sources"
            )
        test_from = snaps[-cfg.test_snapshots]
        valid_from = snaps[-cfg.test_snapshots - cfg.valid_snapshots]
        ts = df["event_timestamp"].to_numpy()
        train, valid, test = ts < valid_from, (ts >= valid_from) & (ts < test_from), ts >= test_from
        if cfg.embargo_days:
            train &= ts <= test_from - np.timedelta64(cfg.embargo_days, "D")
            if not train.any():
                raise DataError(
                    f"no training snapshot is {cfg.embargo_days} days before the first test "
                    f"snapshot {pd.Timestamp(test_from):%Y-%m-%d}: the data is too short for "
                    "this embargo"
                )
        if cfg.customer_disjoint == "valid" and "customer_id" in df:
            u = _hash_unit(df["customer_id"], seed)
            held = u >= 0.85  # validation customers: never trained on
            train &= ~held
            valid &= held
        elif cfg.customer_disjoint and "customer_id" in df:
            u = _hash_unit(df["customer_id"], seed)
            train &= u < 0.7
            valid &= (u >= 0.7) & (u < 0.85)
            test &= u >= 0.85
        desc = (
            f"time split: train < {pd.Timestamp(valid_from):%Y-%m-%d} ≤ valid < "
            f"{pd.Timestamp(test_from):%Y-%m-%d} ≤ test"
            + (
                " (validation customers held out)"
                if cfg.customer_disjoint == "valid"
                else " (customer-disjoint)"
                if cfg.customer_disjoint
                else ""
            )
            + (
                f", training labels matured ({cfg.embargo_days} d embargo)"
                if cfg.embargo_days
                else ""
            )
        )
        return Split(train, valid, test, desc)
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    rest, test_idx = train_test_split(idx, test_size=cfg.test_share, stratify=y, random_state=seed)
    tr_idx, va_idx = train_test_split(rest, test_size=0.2, stratify=y[rest], random_state=seed)
    tr, va, te = (np.isin(idx, part) for part in (tr_idx, va_idx, test_idx))
    return Split(
        tr, va, te, f"stratified split: test {cfg.test_share:.0%}, {cfg.folds}-fold CV for tuning"
    )
