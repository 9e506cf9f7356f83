"""The prediction log: every served prediction, append-only, read by monitoring.

Storage is one folder per model of newline-delimited JSON segment files
(``<root>/<model_name>/<YYYYMMDD>-<writer>.jsonl``). Each writer process owns its own segments,
so appends never interleave; one :meth:`PredictionLog.append` is one ``write(2)`` on an
``O_APPEND`` descriptor, so once it returns the records are in the kernel's page cache and
survive a crash (``kill -9``) of the process that wrote them. A line cut short by a crash
of the machine is skipped by the reader. Customer ids never reach the disk: each record stores
``customer_key``, a keyed hash (HMAC-SHA256, hex) of the id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from wattwise.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BASE_COLUMNS = [
    "request_id",
    "ts",
    "model_name",
    "model_version",
    "customer_key",
    "prediction",
]
SEGMENT_SUFFIX = ".jsonl"
MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as served; ``customer_id`` is hashed before it is stored."""

    request_id: str
    ts: datetime
    model_name: str
    model_version: str
    customer_id: str
    prediction: float
    features: dict[str, float | str | None] = field(default_factory=dict)


def pseudonymize(key: bytes, customer_id: str) -> str:
    """Keyed hash of a customer id (HMAC-SHA256, 64 hex chars): joinable, not reversible."""
    return hmac.new(key, str(customer_id).encode(), hashlib.sha256).hexdigest()


def _clean(v: object) -> float | str | None:
    """JSON-safe feature value: NaN/inf become null, numbers become floats."""
    if type(v) is float:  # the common case first: a request logs ~100 of these
        return v if v - v == 0.0 else None  # inf - inf and nan - nan are nan
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return float(v)
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)
    return f if math.isfinite(f) else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _ts_ns(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise DataError(f"prediction ts must be timezone-aware (UTC), got naive {ts}")
    if isinstance(ts, pd.Timestamp):
        return int(ts.tz_convert("UTC").value)
    return (ts - _EPOCH) // _US * 1000  # exact, without a pandas Timestamp per record


class PredictionLog:
    """Append-only writer; thread-safe, one segment per (model, UTC day) per instance."""

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"prediction log key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}"
            )
        self.root = Path(root)
        self._key = key
        self._writer = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._fds: dict[tuple[str, date], int] = {}
        self._lock = threading.Lock()

    def _fd(self, model_name: str, day: date) -> int:
        k = (model_name, day)
        fd = self._fds.get(k)
        if fd is None:
            if not model_name or "/" in model_name or model_name.startswith("."):
                raise DataError(f"model_name {model_name!r} cannot name a log folder")
            folder = self.root / model_name
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{day:%Y%m%d}-{self._writer}{SEGMENT_SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            self._fds[k] = fd
        return fd

    def append(self, records: Sequence[PredictionRecord]) -> None:
        """Write ``records``; when this returns they survive a crash of this process."""
        if not records:
            return
        lines: dict[tuple[str, date], list[str]] = {}
        for r in records:
            ns = _ts_ns(r.ts)
            row = {
                "request_id": r.request_id,
                "ts_ns": ns,
                "model_name": r.model_name,
                "model_version": str(r.model_version),
                "customer_key": pseudonymize(self._key, r.customer_id),
                "prediction": _clean(r.prediction),
                "features": {str(k): _clean(v) for k, v in r.features.items()},
            }
            day = datetime.fromtimestamp(ns / 1e9, tz=UTC).date()
            lines.setdefault((r.model_name, day), []).append(
                json.dumps(row, separators=(",", ":"), allow_nan=False)
            )
        with self._lock:
            for k, rows in lines.items():
                data = ("\n".join(rows) + "\n").encode()
                fd = self._fd(*k)
                view = memoryview(data)
                while view:  # a regular-file write is whole in practice; loop to be sure
                    n = os.write(fd, view)
                    view = view[n:]

    def close(self) -> None:
        """Close the segment files (appends after this reopen them)."""
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _segment_day(path: Path) -> date | None:
    try:
        return datetime.strptime(path.name[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _to_utc(t: datetime | None) -> pd.Timestamp | None:
    if t is None:
        return None
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _read_segment(path: Path) -> pa.Table | None:
    """Parse one segment; a trailing line cut short by a crash is dropped."""
    data = path.read_bytes()
    end = data.rfind(b"\n")
    if end < 0:
        return None
    body = data[: end + 1]
    opts = pj.ReadOptions(block_size=max(1 << 20, len(body) + 1))
    try:
        return pj.read_json(pa.py_buffer(body), read_options=opts)
    except pa.ArrowInvalid as exc:
        raise DataError(f"prediction log segment {path} is corrupt: {exc}") from exc


def read_predictions(
    root: Path,
    model_name: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Predictions of ``model_name`` with ``start <= ts < end``, oldest first.

    Columns: request_id, ts (UTC), model_name, model_version, customer_key, prediction, then
    one column per feature name.
    """
    lo, hi = _to_utc(start), _to_utc(end)
    folder = Path(root) / model_name
    tables = []
    for seg in sorted(folder.glob(f"*{SEGMENT_SUFFIX}")) if folder.is_dir() else []:
        day = _segment_day(seg)
        if day is not None and (
            (lo is not None and day < lo.date()) or (hi is not None and day > hi.date())
        ):
            continue
        t = _read_segment(seg)
        if t is not None and t.num_rows:
            tables.append(t)
    if not tables:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in BASE_COLUMNS})
        empty["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
        empty["prediction"] = pd.Series(dtype="float64")
        return empty
    table = pa.concat_tables(tables, promote_options="permissive")
    ts = table["ts_ns"].cast(pa.int64())
    mask = None
    if lo is not None:
        mask = pc.greater_equal(ts, lo.value)
    if hi is not None:
        m = pc.less(ts, hi.value)
        mask = m if mask is None else pc.and_(mask, m)
    if mask is not None:
        table = table.filter(mask)
    df = pd.DataFrame(
        {
            "request_id": table["request_id"].to_pandas().astype(object),
            "ts": pd.to_datetime(table["ts_ns"].to_pandas().astype("int64"), utc=True),
            "model_name": table["model_name"].to_pandas().astype(object),
            "model_version": table["model_version"].cast(pa.string()).to_pandas().astype(object),
            "customer_key": table["customer_key"].to_pandas().astype(object),
            "prediction": table["prediction"].cast(pa.float64()).to_pandas(),
        }
    )
    if "features" in table.column_names:
        feats = table["features"].combine_chunks()
        if pa.types.is_struct(feats.type):
            flat = pa.Table.from_arrays(feats.flatten(), names=[f.name for f in feats.type])
            fdf = flat.to_pandas()
            for c in fdf.columns:
                if c not in df.columns:
                    df[c] = fdf[c].to_numpy()
    return df.sort_values("ts", kind="stable").reset_index(drop=True)


def default_root(data_dir: Path) -> Path:
    """``<data_dir>/predlog``: where the service writes and monitoring reads by default."""
    return Path(data_dir) / "predlog"
