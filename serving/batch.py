"""Batch scoring: the registered @champion on every customer of a dataset, or on a new file.

Features come from the same code as training: a new file is imported with the same importer
into a scratch dataset, its feature groups are built by the same pipeline, and the latest row
of each customer-keyed group is joined before scoring.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq

from wattwise.errors import DataError

if TYPE_CHECKING:
    from wattwise.settings import Settings

log = logging.getLogger(__name__)
TS, CREATED = "event_timestamp", "created_timestamp"


def latest_features(
    features_dir: Path, key: str = "customer_id", as_of: pd.Timestamp | None = None
) -> pd.DataFrame:
    """One row per entity: the latest value of every ``key``-keyed feature group (≤ ``as_of``)."""
    frames = []
    for p in sorted(features_dir.glob("*.parquet")):
        names = pq.read_schema(p).names
        if key not in names or TS not in names:
            continue
        df = pd.read_parquet(p)
        if as_of is not None:
            df = df[df[TS] <= as_of]
        df = (
            df.sort_values(TS)
            .drop_duplicates(key, keep="last")
            .drop(columns=[TS, CREATED], errors="ignore")
        )
        frames.append(df.set_index(key))
    if not frames:
        raise DataError(f"no feature tables keyed by {key} in {features_dir}")
    return pd.concat(frames, axis=1, join="outer").reset_index()


def build_all_features(dataset_dir: Path) -> None:
    """Every feature group the dataset's tables allow (same code as for training)."""
    from features.attributes import build_attributes

    if (dataset_dir / "interval_reads").exists() or (dataset_dir / "bills").exists():
        from features.pipeline import build_features

        build_features(dataset_dir)
    build_attributes(dataset_dir)


def score_frame(model_uri: str, frame: pd.DataFrame, key: str = "customer_id") -> pd.DataFrame:
    """Score a feature frame with a registered pyfunc; keep the key column first."""
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri)
    out = model.predict(frame.drop(columns=[key]))
    out.insert(0, key, frame[key].to_numpy())
    return out


def score_file(
    settings: Settings, model: str, source: str, inputs: list[Path], out: Path
) -> pd.DataFrame:
    """Import ``inputs`` as ``source``, build its features, score with ``models:/model@champion``."""
    from features.ingest.run import run_import
    from training.tracking import setup

    setup(settings)
    with tempfile.TemporaryDirectory(prefix="wattwise-score-") as tmp:
        ds = Path(tmp) / source
        report = run_import(source, inputs, ds)
        log.info("imported %s for scoring: %s", source, report)
        build_all_features(ds)
        frame = latest_features(ds / "features")
    scores = score_frame(f"models:/{model}@champion", frame)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        scores.to_parquet(out, index=False)
    else:
        scores.to_csv(out, index=False)
    return scores
