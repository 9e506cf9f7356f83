"""What the service looks up besides models: customers, events, online features, readings.

Customers (ids, marketing consent, region) and events are small tables read at start and
re-read when their files change; online features come from the Feast SQLite store through
``features.store.online`` (the lean reader), per model FeatureService.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wattwise.errors import DataError

log = logging.getLogger(__name__)


def _mtime(d: Path) -> float:
    """Newest modification time under a table folder (0 when absent)."""
    if not d.exists():
        return 0.0
    return max((p.stat().st_mtime for p in d.rglob("*.parquet")), default=d.stat().st_mtime)


@dataclass(frozen=True)
class CustomerTable:
    """One consistent read of the customers table (replaced whole on refresh)."""

    index: pd.Index
    consent: np.ndarray
    consent_known: np.ndarray
    region: np.ndarray

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Row of each id in the table, -1 where unknown."""
        index = self.index
        if len(ids) <= 16:  # a hash lookup per id beats building an Index for a few ids
            out = np.full(len(ids), -1, dtype=np.int64)
            for i, c in enumerate(ids):
                try:
                    loc = index.get_loc(c)
                except KeyError:
                    continue
                if isinstance(loc, int):
                    out[i] = loc
            return out
        return np.asarray(index.get_indexer(list(ids)))


class Customers:
    """Known customer ids with marketing consent and region; ``table`` is swapped atomically."""

    def __init__(self, dataset_dir: Path) -> None:
        self.dataset_dir = dataset_dir
        self._stamp = -1.0
        self.table = CustomerTable(
            pd.Index([], dtype=object), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, object)
        )
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the table if its files changed; True when it was re-read."""
        from features.tables import read_table, table_dir

        stamp = _mtime(table_dir(self.dataset_dir, "customers"))
        if stamp == self._stamp:
            return False
        t = read_table(
            self.dataset_dir, "customers", columns=["customer_id", "consent_marketing", "region"]
        ).to_pandas()
        t = t.drop_duplicates("customer_id", keep="last")
        consent = t["consent_marketing"].astype("boolean")
        self.table = CustomerTable(
            pd.Index(t["customer_id"].astype(str).to_numpy(), dtype=object),
            consent.fillna(False).to_numpy(dtype=bool),
            consent.notna().to_numpy(dtype=bool),
            t["region"].astype(object).to_numpy(),
        )
        self._stamp = stamp
        log.info("customers: %d known (%s)", len(t), self.dataset_dir)
        return True

    @property
    def index(self) -> pd.Index:
        return self.table.index

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        return self.table.positions(ids)

    def __len__(self) -> int:
        return len(self.table.index)


class Events:
    """Demand-response and price events by id (small table)."""

    def __init__(self, dataset_dir: Path) -> None:
        self.dataset_dir = dataset_dir
        self._stamp = -1.0
        self.table = pd.DataFrame()
        self.refresh()

    def refresh(self) -> bool:
        from features.tables import read_table, table_dir

        d = table_dir(self.dataset_dir, "events")
        stamp = _mtime(d)
        if stamp == self._stamp:
            return False
        self.table = (
            read_table(self.dataset_dir, "events").to_pandas().set_index("event_id")
            if d.exists()
            else pd.DataFrame()
        )
        self._stamp = stamp
        return True

    def get(self, event_id: str) -> dict[str, Any] | None:
        if event_id not in self.table.index:
            return None
        row = self.table.loc[event_id]
        return {"event_id": event_id, **{k: (None if pd.isna(v) else v) for k, v in row.items()}}


class OnlineFeatures:
    """Latest feature values per model FeatureService from the Feast online store."""

    def __init__(self, dataset_dir: Path) -> None:
        from features.store import open_store

        self.dataset_dir = dataset_dir
        db = dataset_dir / "feast" / "online.db"
        if not db.is_file():
            raise DataError(
                f"no Feast online store at {db}: run `wattwise features apply --data "
                f"{dataset_dir}` and `wattwise features materialize --data {dataset_dir}`"
            )
        self.store = open_store(dataset_dir)
        self._lock = threading.Lock()
        self._features: dict[str, list[str]] = {}

    def get(self, service_name: str, ids: Sequence[str]) -> dict[str, list[Any]]:
        """``{feature: [value or None per id]}`` of a FeatureService."""
        from features.store import online

        with self._lock:  # one SQLite connection per service: serialise its use
            return online(self.store, service_name, list(ids))

    def features(self, service_name: str) -> list[str]:
        """Feature names of a FeatureService, in the service's order (read once)."""
        from features.store import service

        if service_name not in self._features:
            fs = service(self.store, service_name)
            self._features[service_name] = [
                f.name for p in fs.feature_view_projections for f in p.features
            ]
        return self._features[service_name]
