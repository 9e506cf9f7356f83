"""Interval-read checks beyond the schema: alignment, duplicates, time order and gaps.

:func:`features.tables.validate` checks types, ranges and key uniqueness of any table; reads
also need checks that depend on the meter's interval. Row-level failures are rejected with a
reason (quarantined by importers); properties of a series that are not a single bad row (gaps,
rows that arrived out of time order) are counted in ``notes`` so they are reported, never
silently lost. Everything is vectorized numpy over sorted arrays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import INTERVAL_READS
from features.tables import (
    ValidationResult,
    conform,
    forget_codes,
    key_codes,
    lex_sorted,
    validate_keeping_codes,
)

NOT_ALIGNED = "ts not aligned to the meter interval"


@dataclass
class IntervalCheck(ValidationResult):
    """A :class:`ValidationResult` plus series-level notes (gaps, out-of-order rows)."""

    notes: Counter[str] = field(default_factory=Counter)


def check_interval_reads(
    table: pa.Table, interval_minutes: int | dict[str, int] | pa.Table
) -> IntervalCheck:
    """Validate interval reads: schema rules, then alignment to the interval, then gaps.

    ``interval_minutes`` is one interval for every meter, a ``{meter_id: minutes}`` mapping, or
    a meters table with ``meter_id`` and ``interval_minutes``. A read whose ts is not a multiple
    of its meter's interval (sub-hourly), or of 30 minutes (hourly and longer: local day
    boundaries differ by zone) is rejected; so is a second read of the same meter and ts
    (first kept). Missing intervals between a meter's first and last read are counted as
    ``missing intervals`` in notes.
    """
    try:
        return _check(table, interval_minutes)
    finally:
        forget_codes()


def _check(table: pa.Table, interval_minutes: int | dict[str, int] | pa.Table) -> IntervalCheck:
    data = table if table.schema == INTERVAL_READS.schema else conform(INTERVAL_READS, table)
    base = validate_keeping_codes(INTERVAL_READS, data)
    good = base.good
    notes: Counter[str] = Counter()
    if good.num_rows == 0:
        return IntervalCheck(base.table, good, base.rejected, base.reasons, notes)

    meter = key_codes(good, ("meter_id",))[0]
    ts_us = key_codes(good, ("ts",))[0]
    step_us = _interval_per_row(good, meter, interval_minutes) * 60_000_000
    # Sub-hourly reads align to their interval; hourly and longer ones to the half hour, since
    # their boundaries follow the local clock (a daily read starts at local midnight).
    align_us = np.minimum(step_us, 30 * 60_000_000)
    misaligned = (ts_us % align_us) != 0
    reasons = Counter(base.reasons)
    rejected = base.rejected
    if misaligned.any():
        mask = pa.array(misaligned)
        bad = good.filter(mask)
        bad = bad.append_column("reason", pa.array([NOT_ALIGNED] * bad.num_rows, pa.string()))
        rejected = (
            pa.concat_tables([rejected, bad.cast(rejected.schema)]) if rejected.num_rows else bad
        )
        reasons[NOT_ALIGNED] += bad.num_rows
        good = good.filter(pc.invert(mask))
        keep = ~misaligned
        ts_us = ts_us[keep]
        step_us = step_us[keep] if step_us.ndim else step_us
        # codes in order of first appearance among the rows kept (the sort order of meters)
        meter = key_codes(good, ("meter_id",))[0] if good.num_rows else meter[keep]

    if good.num_rows:
        ordered, _ = lex_sorted([meter, ts_us]) if good.num_rows > 1 else (True, None)
        if ordered:  # the usual case: one pass over neighbours, no sort, no copy
            m, t, s = meter, ts_us, step_us
        else:
            order = np.lexsort((ts_us, meter))
            out_of_order = int((order != np.arange(order.size)).sum())
            notes["reads not in time order (sorted)"] += out_of_order
            good = good.take(pa.array(order))
            m, t, s = meter[order], ts_us[order], step_us[order] if step_us.ndim else step_us
        step = np.diff(t)  # in place from here: few temporaries on big tables
        step //= s[1:] if s.ndim else s
        step -= 1
        n_missing = int(np.sum(step, where=(m[1:] == m[:-1]) & (step > 0)))
        if n_missing:
            notes["missing intervals (gaps)"] += n_missing
    return IntervalCheck(base.table, good, rejected, reasons, notes)


def _interval_per_row(
    good: pa.Table, meter: np.ndarray, spec: int | dict[str, int] | pa.Table
) -> np.ndarray:
    """Interval minutes: a 0-d array for one interval, else one per row (looked up per meter).

    ``meter`` holds the rows' meter codes; each meter id is looked up once, not once per row.
    """
    if isinstance(spec, int | np.integer):
        return np.asarray(int(spec), dtype=np.int64)
    if isinstance(spec, dict):
        spec = pa.table({"meter_id": list(spec), "interval_minutes": list(spec.values())})
    lookup = spec.select(["meter_id", "interval_minutes"])
    rows = np.arange(meter.size)
    first = np.full(int(meter.max()) + 1, -1, dtype=np.int64)
    first[meter[::-1]] = rows[::-1]  # first row of each code (later writes win)
    present = first >= 0
    ids = good.column("meter_id").take(pa.array(first[present]))
    idx = pc.index_in(ids, value_set=lookup.column("meter_id"))
    vals = pc.take(lookup.column("interval_minutes"), idx)
    if vals.null_count:
        unknown = pc.unique(pc.filter(ids, pc.is_null(idx))).to_pylist()[:3]
        from wattwise.errors import DataError

        raise DataError(f"interval reads for meters with no interval: {unknown}")
    minutes = vals.to_numpy(zero_copy_only=False).astype(np.int64)
    if (minutes == minutes[0]).all():  # one interval for all: no per-row array
        return np.asarray(minutes[0], dtype=np.int64)
    per_code = np.zeros(first.size, dtype=np.int64)
    per_code[present] = minutes
    return per_code[meter]
