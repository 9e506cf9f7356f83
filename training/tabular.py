"""What every tabular kind shares: its training set is a labels table joined point-in-time
with its FeatureService, split by time (or stratified) and preprocessed once.

Binary (churn) and propensity specs inherit :class:`TabularSpec` and add how they fit and
evaluate; a new tabular kind can too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.data import feature_columns, fingerprint, season_weights, split
from training.estimators import FramePreprocessor
from training.spec import TabularPrepared
from wattwise.errors import ConfigError, DataError, EmptyResultError

if TYPE_CHECKING:
    from training.config import TabularConfig
    from training.kinds.base import Kind


def load_training_set(dataset_dir: Path, cfg: Any, kind: Kind) -> pd.DataFrame:
    """The kind's labels joined point-in-time with the config's (else the kind's)
    FeatureService, from the dataset's feature store."""
    from features.store import training_set

    service = cfg.feature_service or kind.service_name
    if kind.labels is None or service is None:
        raise ConfigError(f"model kind {kind.name!r} has no labels table and FeatureService")
    return training_set(dataset_dir, kind.labels, service)


class TabularSpec:
    """``load`` and ``prepare`` of a tabular kind; subclasses say which columns are labels and
    which label the split balances."""

    def label_columns(self, df: pd.DataFrame, cfg: Any) -> list[str]:
        raise NotImplementedError

    def split_target(self, df: pd.DataFrame, cfg: Any) -> np.ndarray:
        """The label the split balances and checks (one value per row)."""
        raise NotImplementedError

    def load(self, dataset_dir: Path, cfg: Any, kind: Kind) -> pd.DataFrame:
        return load_training_set(dataset_dir, cfg, kind)

    def prepare(self, df: pd.DataFrame, cfg: TabularConfig, ds: Path) -> TabularPrepared:
        """Labelled rows, feature columns, split and preprocessor: the same for every tabular
        kind."""
        labels = self.label_columns(df, cfg)
        missing = [c for c in labels if c not in df]
        if missing:
            raise DataError(f"label {missing[0]!r} is not in the training set")
        df = df[df[labels].notna().any(axis=1)].reset_index(drop=True)
        where = f"dataset {ds.name}"
        if df.empty:
            raise EmptyResultError(
                f"the training set of {where} has no rows with a {labels[0]!r} label: "
                "nothing to train on"
            )
        target = self.split_target(df, cfg)
        classes = np.unique(target[np.isfinite(target)])
        if len(classes) < 2:
            ts = df["event_timestamp"]
            raise EmptyResultError(
                f"label {labels[0]!r} has a single class ({', '.join(f'{c:g}' for c in classes)}) "
                f"in the {len(df)} rows of {where} as of {ts.min():%Y-%m-%d}..{ts.max():%Y-%m-%d}: "
                "nothing to train a binary model on"
            )
        feats = feature_columns(df, cfg, labels)
        sp = split(df, target, cfg.split, cfg.tuning.seed)
        pre = FramePreprocessor().fit(df.loc[sp.train, feats])
        weight = (
            season_weights(df["event_timestamp"], df.loc[sp.test, "event_timestamp"], scale)
            if (scale := cfg.season_weight_months)
            else None
        )
        ts = df["event_timestamp"]
        return TabularPrepared(
            dataset_dir=ds,
            fingerprint=fingerprint(df),
            params={
                "training_rows": len(df),
                "time_range": f"{ts.min():%Y-%m-%d}..{ts.max():%Y-%m-%d}",
                "split": sp.description,
                "n_features": len(feats),
                "label": ",".join(labels),
                "calibration": cfg.calibration,
                "season_weight_months": cfg.season_weight_months,
            },
            df=df,
            X=pre.transform(df[feats]),
            feats=feats,
            split=sp,
            pre=pre,
            labels=labels,
            weight=weight,
        )
