"""Batch scoring: the registered @champion on every customer of a dataset, or on a new file.

From the offline store (:func:`score_offline`): every customer, the FeatureService joined
point-in-time at ``as_of`` by Feast, scored by the same loader and model version as the
online service.

Features come from the same code as training: a new file is imported with the same importer
into a scratch dataset, its feature groups are built by the same pipeline, and the latest row
of each customer-keyed group is joined before scoring.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from wattwise.errors import DataError, nothing

if TYPE_CHECKING:
    from serving.config import ServingConfig
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


@dataclass
class BatchResult:
    """What an offline scoring run produced, with its timings (retrieval apart from scoring)."""

    model: str
    version: str
    as_of: pd.Timestamp
    rows: int
    scored: int
    out: Path
    retrieval_s: float
    scoring_s: float

    @property
    def rate(self) -> float:
        """Customers scored per second, feature retrieval excluded."""
        return self.rows / self.scoring_s if self.scoring_s > 0 else float("inf")

    def render(self) -> str:
        return (
            f"scored {self.rows:,} customers ({self.scored:,} with a score) with {self.model} "
            f"v{self.version} as of {self.as_of:%Y-%m-%d} -> {self.out}\n"
            f"  features {self.retrieval_s:.2f} s (Feast offline, point-in-time), "
            f"scoring {self.scoring_s:.3f} s ({self.rate:,.0f} customers/s)"
        )


def batch_entities(dataset_dir: Path, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every customer of the dataset, at ``as_of`` (the entity rows of the offline join)."""
    from features.tables import read_table

    ids = read_table(dataset_dir, "customers", columns=["customer_id"]).column(0)
    frame = pd.DataFrame({"customer_id": pd.unique(ids.to_pandas().astype(str))})
    frame[TS] = as_of
    return frame


def resolve_version(settings: Settings, name: str, alias: str) -> str:
    """The version an alias points at, or an error that names the alias."""
    from training.registry import alias_version
    from training.tracking import setup

    version = alias_version(setup(settings), name, alias)
    if version is None:
        raise DataError(f"registered model {name!r} has no @{alias} version: train and promote it")
    return version


def write_frame(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        raise DataError(f"--out must end in .parquet or .csv, got {out.name}")


def score_offline(
    settings: Settings,
    cfg: ServingConfig,
    kind: str,
    out: Path,
    as_of: pd.Timestamp | None = None,
    dataset_dir: Path | None = None,
    reasons: bool = False,
    allow_empty: bool = False,
) -> BatchResult:
    """Score every customer with ``kind``'s @champion on its FeatureService at ``as_of``.

    The same model version and loader as the online service (the kind's adapter), the same
    FeatureService, read from Feast's offline store by a point-in-time join (so ``as_of`` in
    the past gives what the online store held then), and the kind's derived inputs
    (``Kind.inputs``) for a pyfunc kind. A kind that scores only consenting customers
    (propensity) applies the same consent rule as the service. Reason codes are opt-in
    (``reasons``, binary kinds), by the serving config's ``reason_method``, as online.
    ``as_of`` defaults to the newest snapshot of the kind's own feature groups. Nothing
    scored is :class:`~wattwise.errors.EmptyResultError` unless ``allow_empty`` (the file is
    still written, for inspection).
    """
    import time

    import numpy as np

    from features.store import historical, open_store
    from serving.config import served_kinds
    from serving.core import CONSENT_UNKNOWN, NO_CONSENT
    from serving.models import loader
    from training.kinds import registry

    kinds = registry(settings)
    if kind not in kinds:
        raise DataError(f"unknown model kind {kind!r} (known: {', '.join(sorted(kinds))})")
    k = kinds[kind]
    if not k.batch or k.service_name is None:
        batchable = sorted(n for n, x in kinds.items() if x.batch)
        raise DataError(
            f"{kind} is not batch scored from the offline store (those that are: "
            f"{', '.join(batchable)})"
        )
    served = served_kinds(cfg, kinds).get(kind)
    if served is None:
        raise DataError(f"model kind {kind!r} is disabled in the serving config")
    ds = dataset_dir or settings.data_dir / cfg.dataset
    version = resolve_version(settings, served.registered_name, served.alias)
    uri = f"models:/{served.registered_name}/{version}"
    scorer: Any = loader(k.adapter, cfg)(uri)
    store = open_store(ds)
    as_of = pd.Timestamp(as_of) if as_of is not None else newest_snapshot(ds, store, k.service_name)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    t0 = time.perf_counter()
    entities = batch_entities(ds, as_of)
    frame = historical(store, k.service_name, entities)
    t1 = time.perf_counter()
    if k.adapter == "pyfunc":
        feats = frame.drop(columns=["customer_id", TS], errors="ignore")
        has = feats.notna().any(axis=1).to_numpy()
        raw = scorer.predict(k.inputs(feats))
        scores = (raw if isinstance(raw, pd.DataFrame) else pd.DataFrame({"prediction": raw}))[
            list(k.outputs) or slice(None)
        ]
    else:
        feats = frame.reindex(columns=scorer.features)
        has = feats.notna().any(axis=1).to_numpy()
        scores = (
            scorer.score_frame(feats, reasons=reasons)
            if k.adapter == "binary"
            else scorer.score_frame(feats)
        )
    t2 = time.perf_counter()
    result = pd.concat(
        [frame[["customer_id"]].reset_index(drop=True), scores.reset_index(drop=True)], axis=1
    )
    score_cols = list(scores.columns)
    result.loc[~has, score_cols] = np.nan
    result["error"] = pd.Series("no features at as_of", index=result.index).where(~has, None)
    if k.marketing:
        from serving.lookup import Customers

        cust = Customers(ds).table
        pos = cust.positions(result["customer_id"].tolist())
        known = pos >= 0
        consent = np.zeros(len(result), dtype=bool)
        recorded = np.zeros(len(result), dtype=bool)
        consent[known] = cust.consent[pos[known]]
        recorded[known] = cust.consent_known[pos[known]]
        reason = pd.Series(None, index=result.index, dtype=object)
        reason[~consent] = NO_CONSENT
        reason[~recorded] = CONSENT_UNKNOWN
        result["reason"] = reason
        result.loc[~consent, score_cols] = np.nan
    result.insert(1, "model_name", served.registered_name)
    result.insert(2, "model_version", version)
    result.insert(3, "as_of", as_of)
    write_frame(result, out)
    scored = int(result[score_cols[0]].notna().sum())
    if scored == 0:
        log.warning(
            nothing(
                f"{kind}: none of {len(result):,} customers has a score as of {as_of:%Y-%m-%d} "
                f"(written to {out}); pick --as-of inside the feature tables' range",
                allow_empty,
            )
        )
    return BatchResult(
        served.registered_name, version, as_of, len(result), scored, out, t1 - t0, t2 - t1
    )


def newest_snapshot(dataset_dir: Path, store: Any, service_name: str) -> pd.Timestamp:
    """The newest snapshot of a FeatureService's own groups (a group the service does not
    read, such as DR performance for churn, does not move the date past its features)."""
    import pyarrow.compute as pc

    from features.store import service

    fs = service(store, service_name)
    newest = []
    for proj in fs.feature_view_projections:
        path = dataset_dir / "features" / f"{proj.name}.parquet"
        if path.is_file():
            col = pq.read_table(path, columns=[TS]).column(TS)
            if len(col):
                newest.append(pd.Timestamp(pc.max(col).as_py()))
    if not newest:
        raise DataError(f"{service_name}: no feature rows in {dataset_dir / 'features'}")
    return max(newest)
