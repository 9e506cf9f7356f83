"""Reading, writing and validating canonical tables as parquet datasets.

Validation is vectorized Arrow/numpy: every row gets the first reason it fails (null in a
required column, non-finite, out of range, not an allowed value, duplicate key), good
rows are written, rejected rows go to ``quarantine/<table>/`` with their reason. Nothing is
dropped silently: callers get the counts.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from features.schema import Table, table
from wattwise.errors import DataError

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"


@dataclass
class ValidationResult:
    """Rows that passed, rows that did not (with a ``reason`` column), and counts by reason."""

    table: str
    good: pa.Table
    rejected: pa.Table
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def n_read(self) -> int:
        return self.good.num_rows + self.rejected.num_rows


def conform(tdef: Table, data: pa.Table) -> pa.Table:
    """Select and cast ``data`` to the table's schema; missing nullable columns become null.

    Raises :class:`DataError` naming the column when a required column is missing or a cast
    is impossible.
    """
    arrays = []
    for col in tdef.columns:
        if col.name in data.column_names:
            arr = data.column(col.name)
            if arr.type != col.type:
                try:
                    arr = arr.cast(col.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise DataError(
                        f"{tdef.name}.{col.name}: cannot convert {arr.type} to {col.type}: {exc}"
                    ) from exc
            arrays.append(arr)
        elif col.nullable:
            arrays.append(pa.nulls(data.num_rows, type=col.type))
        else:
            raise DataError(f"{tdef.name}: required column {col.name!r} is missing")
    return pa.Table.from_arrays(arrays, schema=tdef.schema)


def _mask(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean Arrow result as numpy, null counting as False (SQL ``WHEN`` semantics)."""
    arr = pc.fill_null(arr, False)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr.to_numpy(zero_copy_only=False)


def _checks(tdef: Table, data: pa.Table):  # noqa: ANN202 - generator of (label, mask)
    """Each row-level check in order, as (reason, failing-rows mask); lazily computed.

    Masks are Arrow booleans (null = passes) or, for duplicates, numpy booleans.
    """
    for c in tdef.columns:
        col = data.column(c.name)
        if col.null_count == len(col):  # nothing to check but presence
            if not c.nullable:
                yield f"missing {c.name}", pc.is_null(col)
            continue
        if not c.nullable and col.null_count:
            yield f"missing {c.name}", pc.is_null(col)
        if pa.types.is_floating(c.type):
            yield f"non-finite {c.name}", pc.invert(pc.is_finite(col))
        if c.min is not None:
            yield f"{c.name} below {c.min}", pc.less(col, pa.scalar(c.min))
        if c.max is not None:
            yield f"{c.name} above {c.max}", pc.greater(col, pa.scalar(c.max))
        if c.allowed:
            bad = pc.invert(pc.is_in(col, value_set=pa.array(c.allowed, col.type)))
            yield f"unknown {c.name}", pc.and_(pc.is_valid(col), bad)
    if tdef.key:
        yield f"duplicate {'/'.join(tdef.key)}", duplicate_mask(data, tdef.key)


def key_codes(data: pa.Table, key: tuple[str, ...] | list[str]) -> list[np.ndarray]:
    """Integer codes per key column whose equality is the key's equality (nulls equal).

    Integer-like columns (ints, timestamps, dates, bools) are their int64 values; other
    columns are codes in order of first appearance (int32), so rows grouped by a string id
    have non-decreasing codes.
    """
    out: list[np.ndarray] = []
    for k in key:
        chunked = data.column(k)
        t = chunked.type
        if pa.types.is_integer(t) or pa.types.is_temporal(t) or pa.types.is_boolean(t):
            col = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
            if pa.types.is_temporal(t):
                vals = col.view(pa.int32() if t.bit_width == 32 else pa.int64())
            else:
                vals = pc.cast(col, pa.int8()) if pa.types.is_boolean(t) else col
            if col.null_count:
                out.append(_mask(pc.is_null(col)).astype(np.int64))
                vals = pc.fill_null(vals, 0)
            out.append(vals.to_numpy(zero_copy_only=False).astype(np.int64, copy=False))
        else:
            out.append(_string_codes(chunked))
    return out


_LAST_CODES: list[tuple[pa.ChunkedArray, np.ndarray]] = []  # (column kept alive, its codes)


def _identity(col: pa.ChunkedArray) -> tuple:
    return tuple(
        (len(c), c.offset, tuple(b.address if b else 0 for b in c.buffers())) for c in col.chunks
    )


def _string_codes(col: pa.ChunkedArray) -> np.ndarray:
    """Codes of a non-integer column; the last result is reused for the same Arrow data.

    Validation and the interval checks ask for the meter codes of the same column in turn;
    Arrow data are immutable and the cached column is kept alive (until
    :func:`forget_codes`), so equal buffers, offsets and lengths mean equal data.
    """
    ident = _identity(col)
    for arr, codes in _LAST_CODES:
        if _identity(arr) == ident:
            return codes
    run = _run_codes(col)
    if run is None:
        whole = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        enc = pc.dictionary_encode(whole, null_encoding="encode")
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    else:
        codes = run
    _LAST_CODES[:] = [(col, codes)]
    return codes


def _run_codes(col: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """Codes of a column whose equal values are contiguous (e.g. rows grouped by meter).

    One comparison of neighbours, chunk by chunk (no copy of the strings), instead of
    hashing every value; the codes are the run numbers, the same as dictionary codes in
    order of first appearance. None when values recur in separate runs (or are null): the
    caller then hashes.
    """
    chunks = [c for c in (col.chunks if isinstance(col, pa.ChunkedArray) else [col]) if len(c)]
    n = sum(len(c) for c in chunks)
    if col.null_count or n < 2 or n >= 2**31:
        return None
    parts, prev = [], None
    for c in chunks:
        head = np.array([prev is None or c[0].as_py() != prev])
        inner = ~_mask(pc.equal(c.slice(1), c.slice(0, len(c) - 1)))
        parts += [head, inner]
        prev = c[len(c) - 1].as_py()
    change = np.concatenate(parts)
    starts = np.flatnonzero(change)
    if starts.size > 1 and pc.count_distinct(col.take(pa.array(starts))).as_py() != starts.size:
        return None
    return np.cumsum(change, dtype=np.int32) - 1


def lex_sorted(codes: list[np.ndarray]) -> tuple[bool, np.ndarray]:
    """Whether rows are in non-decreasing key order, and the rows equal to their predecessor.

    One numpy pass over neighbours; ``same[i]`` is True when row i+1 has row i's key.
    """
    ge = np.ones(codes[0].size - 1, dtype=bool)
    same = np.ones(codes[0].size - 1, dtype=bool)
    for c in reversed(codes):
        a, b = c[:-1], c[1:]
        eq = a == b
        ge = (b > a) | (eq & ge)
        same &= eq
    return bool(ge.all()), same


def duplicate_mask(data: pa.Table, key: tuple[str, ...] | list[str]) -> np.ndarray:
    """Rows whose key occurred in an earlier row (the first occurrence is not marked).

    Keys already in order (the usual case for meter/time series) need one pass over
    neighbours; otherwise a stable sort of the key codes.
    """
    n = data.num_rows
    if n < 2:
        return np.zeros(n, dtype=bool)
    codes = key_codes(data, key)
    ordered, same = lex_sorted(codes)
    if ordered:
        return np.r_[False, same]
    order = np.lexsort(codes[::-1])  # stable: equal keys keep row order, first one wins
    s = [c[order] for c in codes]
    same = np.ones(n - 1, dtype=bool)
    for c in s:
        same &= c[1:] == c[:-1]
    dup = np.zeros(n, dtype=bool)
    dup[order[1:][same]] = True
    return dup


def validate(tdef: Table, data: pa.Table) -> ValidationResult:
    """Split ``data`` (already conformed) into good and rejected rows, keeping input order.

    Every row gets the first check it fails, in column order (missing, non-finite, below,
    above, unknown value), then duplicate key. Duplicates keep the first occurrence and
    quarantine the rest. Vectorized Arrow/numpy: no copy of the data when every row passes.
    """
    try:
        return validate_keeping_codes(tdef, data)
    finally:
        forget_codes()


def forget_codes() -> None:
    """Drop the key codes remembered by :func:`key_codes` (and the column they belong to)."""
    _LAST_CODES.clear()


def validate_keeping_codes(tdef: Table, data: pa.Table) -> ValidationResult:
    """:func:`validate`, remembering the last string key's codes for a following check.

    The caller reuses them through :func:`key_codes` and must call :func:`forget_codes`.
    """
    if data.schema != tdef.schema:
        data = conform(tdef, data)
    if data.num_rows == 0:
        return ValidationResult(
            tdef.name, data, data.append_column("reason", pa.array([], pa.string()))
        )
    code = np.zeros(data.num_rows, dtype=np.int16)
    labels: list[str] = [""]
    for label, failed in _checks(tdef, data):
        if isinstance(failed, np.ndarray):
            if not failed.any():
                continue
        elif not pc.any(failed).as_py():  # the usual case: no row fails, no conversion
            continue
        else:
            failed = _mask(failed)
        hit = failed & (code == 0)
        if hit.any():
            labels.append(label)
            code[hit] = len(labels) - 1
    bad = code != 0
    if not bad.any():
        empty = data.slice(0, 0).append_column("reason", pa.array([], pa.string()))
        return ValidationResult(tdef.name, data, empty)
    bad_arr = pa.array(bad)
    codes = code[bad]
    names = np.array(labels, dtype=object)
    rejected = data.filter(bad_arr).append_column("reason", pa.array(names[codes], pa.string()))
    counts = np.bincount(codes, minlength=len(labels))
    reasons = Counter({labels[i]: int(counts[i]) for i in range(1, len(labels)) if counts[i]})
    return ValidationResult(tdef.name, data.filter(pc.invert(bad_arr)), rejected, reasons)


def table_dir(dataset_dir: Path, name: str) -> Path:
    """Folder of a table inside a dataset (``truth/`` for truth tables)."""
    return dataset_dir / table(name).relpath()


def write_parts(
    dataset_dir: Path,
    name: str,
    data: pa.Table,
    *,
    part: str = "part-0",
    partition_value: str | None = None,
    compression: str = "zstd",
) -> Path:
    """Write one parquet file of a table (``partition_value`` for partitioned tables)."""
    tdef = table(name)
    d = table_dir(dataset_dir, name)
    if tdef.partition_by:
        if partition_value is None:
            raise ValueError(f"{name} is partitioned by {tdef.partition_by}: give partition_value")
        d = d / f"{tdef.partition_by}={partition_value}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{part}.parquet"
    pq.write_table(data, path, compression=compression)
    return path


def write_table(dataset_dir: Path, name: str, data: pa.Table, *, overwrite: bool = True) -> None:
    """Write a whole table (conformed to its schema); partitioned tables split by month."""
    tdef = table(name)
    data = conform(tdef, data)
    d = table_dir(dataset_dir, name)
    if overwrite and d.exists():
        shutil.rmtree(d)
    if tdef.partition_by == "month":
        months = pc.strftime(data.column("ts"), format="%Y-%m")
        for m in pc.unique(months).to_pylist():
            sub = data.filter(pc.equal(months, m))
            write_parts(
                dataset_dir, name, sub, part=f"part-{uuid.uuid4().hex[:8]}", partition_value=m
            )
    else:
        write_parts(dataset_dir, name, data)


def read_table(
    dataset_dir: Path,
    name: str,
    columns: list[str] | None = None,
    filter: pc.Expression | None = None,
) -> pa.Table:
    """Read a table as arrow, cast to its canonical schema (dictionary ids become strings)."""
    tdef = table(name)
    d = table_dir(dataset_dir, name)
    if not d.exists():
        raise DataError(
            f"table {name!r} not found under {dataset_dir} (generate or import data first)"
        )
    ds = pads.dataset(d, format="parquet", partitioning="hive")
    got = ds.to_table(columns=columns or tdef.column_names, filter=filter)
    if columns:
        return got
    return conform(tdef, got)


def write_quarantine(
    dataset_dir: Path, name: str, rejected: pa.Table, source: str, *, part: str | None = None
) -> Path | None:
    """Append rejected rows (with reason and source) to ``quarantine/<table>/``.

    ``part`` names the file (importers pass one derived from the source file's content hash,
    so that re-importing a file replaces its quarantine entries instead of duplicating them).
    """
    if rejected.num_rows == 0:
        return None
    d = dataset_dir / QUARANTINE / name
    d.mkdir(parents=True, exist_ok=True)
    out = rejected.append_column("source", pa.array([source] * rejected.num_rows, pa.string()))
    path = d / f"{part or uuid.uuid4().hex[:12]}.parquet"
    pq.write_table(out, path)
    log.info("quarantined %d %s rows from %s -> %s", rejected.num_rows, name, source, path)
    return path
