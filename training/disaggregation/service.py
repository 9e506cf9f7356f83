"""Using a registered disaggregation model: a customer's period, a month, readings a caller
sends, a REDD file, the feature export.

One breakdown for the command line and the service: ``wattwise disaggregate CUSTOMER --month``
(:func:`customer_breakdown`) and ``POST /disaggregation/breakdown`` (serving.core) both check
the period (:func:`window`, :func:`month_window`), find the customer's meter and reads
(:func:`locate`), and call :func:`period_breakdown` (readings a caller sends:
:func:`parse_readings`, :func:`readings_breakdown`), which share :func:`_breakdown`. Times
and months are UTC (see the section comment below); every input error is a
:class:`BreakdownError` naming the field, which the service answers as a 4xx.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.schema import table
from training.disaggregation.breakdown import (
    detection_scores,
    feature_table,
    predict_monthly,
    shares,
    write_features,
)
from training.disaggregation.config import DisaggConfig
from training.disaggregation.data import (
    Series,
    customer_meters,
    fill_gaps,
    load_series,
    meter_interval,
    reads_source,
    table_source,
    utc_connection,
)
from wattwise.cli_types import YEARS, parse_month
from wattwise.errors import DataError, WattwiseError

if TYPE_CHECKING:
    from training.disaggregation.pyfunc import DisaggBundle
    from wattwise.settings import Settings

log = logging.getLogger(__name__)


def load_bundle(settings: Settings, model: str, version: str = "champion") -> DisaggBundle:
    """The registered model's bundle (``version`` is a number or an alias)."""
    import mlflow

    from training.tracking import setup

    setup(settings)
    uri = f"models:/{model}/{version}" if version.isdigit() else f"models:/{model}@{version}"
    try:
        m = mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise WattwiseError(
            f"cannot load {uri}: train it first (`wattwise train disaggregation`)"
        ) from exc
    return m.unwrap_python_model().bundle  # type: ignore[no-any-return]


def _predict_w(bundle: DisaggBundle, data_interval: int) -> Any:
    """``(w, times) → prediction`` in W at the model's interval; reads at a finer interval are
    averaged (each group timed by its first read). ``times``: epoch seconds of the reads."""
    model_interval = int(round(float(bundle.meta.get("interval_minutes", data_interval))))
    if model_interval == data_interval:
        return lambda w, times=None: bundle.est.predict(w, times=times)
    if model_interval % data_interval:
        raise DataError(
            f"the model works on {model_interval}-min reads; this dataset has {data_interval}-min"
            " reads, which do not aggregate to it"
        )
    k = model_interval // data_interval

    def predict(w: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        n, T = w.shape
        pad = (-T) % k
        wp = np.pad(w, ((0, 0), (0, pad)), mode="edge").reshape(n, -1, k).mean(-1)
        tp = None if times is None else np.asarray(times, np.float64)[..., ::k]
        return np.repeat(bundle.est.predict(wp, times=tp), k, axis=1)[:, :T]

    return predict


# ---- the breakdown: one function for the command line and the service -----------------
#
# Every time is an instant: an aware time is converted to UTC, a naive one is UTC. A month is
# a calendar month in UTC (``2024-07`` is [2024-07-01T00:00Z, 2024-08-01T00:00Z)), the months
# of the feature store's appl_share_* rows, of truth/appliance_monthly and of the interval
# reads' partitions. A period [start, end) holds the reads whose interval starts in it.

EARLIEST = pd.Timestamp(f"{YEARS[0]}-01-01", tz="UTC")  # meter data lives in these years
LATEST = pd.Timestamp(f"{YEARS[1] + 1}-01-01", tz="UTC")
KWH = table("interval_reads").column("kwh")  # the canonical range of one reading's kWh
KWH_MIN = float(KWH.min if KWH.min is not None else 0.0)
KWH_MAX = float(KWH.max if KWH.max is not None else 1000.0)
ID_EXAMPLES = 1000  # customer ids read to describe their form


class BreakdownError(DataError):
    """Input of a breakdown the caller must fix: the field at fault, why, and the status the
    scoring service answers with. ``detail`` is for the command line only (paths, other
    customers' ids): never sent to an API caller."""

    def __init__(self, field: str, message: str, status: int = 422, detail: str = "") -> None:
        super().__init__(message + detail)
        self.field = field
        self.message = message
        self.status = status


def as_utc(value: datetime | pd.Timestamp | str, field: str) -> pd.Timestamp:
    """An instant as an aware UTC timestamp (naive: taken as UTC); a time outside the years
    meter data can have (or not a time) is a :class:`BreakdownError` naming ``field``."""
    bad = f"must be a time in the years {YEARS[0]}-{YEARS[1]} (UTC without a zone), got {value!s}"
    # the wall-clock year first: pandas' times end in 1677 and 2262, Python's in 1 and 9999
    if isinstance(value, datetime) and not EARLIEST.year - 1 <= value.year <= LATEST.year:
        raise BreakdownError(field, bad)
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise BreakdownError(field, bad) from exc
    if t is pd.NaT:
        raise BreakdownError(field, bad)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    if not EARLIEST <= t <= LATEST:
        raise BreakdownError(field, bad)
    return t


def window(
    start: datetime | pd.Timestamp | str, end: datetime | pd.Timestamp | str
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` as UTC instants (see :func:`as_utc`); ``end`` must be after ``start``."""
    lo, hi = as_utc(start, "start"), as_utc(end, "end")
    if hi <= lo:
        raise BreakdownError("end", f"must be after start ({lo.isoformat()}), got {hi.isoformat()}")
    return lo, hi


def month_window(month: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The UTC calendar month ``YYYY-MM`` (or the month of a date in it) as ``[start, end)``."""
    try:
        m = parse_month(str(month))
    except ValueError as exc:
        raise BreakdownError("month", str(exc)) from None
    start = pd.Timestamp(f"{m}-01", tz="UTC")
    return start, start + pd.offsets.MonthBegin(1)


def days(start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Length of ``[start, end)`` in days (what a period limit is checked against)."""
    return (end - start) / pd.Timedelta(days=1)


def _id_form(ids: list[str]) -> str:
    """``C + 7 digits`` when the ids share a prefix and a digit count, else ``""``."""
    parts = [re.fullmatch(r"([^\d]*)(\d+)", i) for i in ids]
    if not ids or not all(parts):
        return ""
    forms = {(p.group(1), len(p.group(2))) for p in parts if p}
    if len(forms) != 1:
        return ""
    prefix, n = forms.pop()
    return f"{prefix} + {n} digits" if prefix else f"{n} digits"


def unknown_customer(dataset_dir: Path, customer_id: str) -> BreakdownError:
    """The error for an id without an electric meter in the dataset: the id, and (for the
    command line) the form of the ids the dataset has, with a real one as an example."""
    table_name = "customers" if (dataset_dir / "customers").is_dir() else "meters"
    try:
        con = utc_connection()
        src = table_source(dataset_dir, table_name)
        known = con.execute(
            f"select count(*) from {src} where customer_id = ?", [customer_id]
        ).fetchone()
        rows = con.execute(
            f"select distinct customer_id from {src}"
            f" where customer_id is not null order by 1 limit {ID_EXAMPLES}"
        ).fetchall()
    except Exception:  # noqa: BLE001 - the hint is a courtesy; the error stands without it
        known, rows = None, []
    if known and known[0]:
        return BreakdownError("customer_id", f"customer {customer_id!r} has no electric meter", 404)
    ids = [str(r[0]) for r in rows]
    detail = ""
    if ids:
        form = _id_form(ids)
        detail = f" in {dataset_dir}: ids there look like {ids[0]!r}" + (
            f" ({form})" if form else ""
        )
    return BreakdownError("customer_id", f"unknown customer {customer_id!r}", 404, detail)


@dataclass(frozen=True)
class Period:
    """A customer's electric meter and a checked period, ready for a model: what
    :func:`locate` found, before any model is loaded."""

    customer_id: str
    meter_id: str
    start: pd.Timestamp  # UTC, included
    end: pd.Timestamp  # UTC, excluded


def count_reads(dataset_dir: Path, meter_id: str, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """How many reads of a meter start in ``[start, end)`` (only the months' partitions)."""
    row = (
        utc_connection()
        .execute(
            f"select count(*) from {reads_source(dataset_dir, start, end)} where meter_id = ?"
            " and ts >= epoch_ms(?) and ts < epoch_ms(?) and isfinite(kwh)",
            [meter_id, int(start.value // 1_000_000), int(end.value // 1_000_000)],
        )
        .fetchone()
    )
    return int(row[0]) if row else 0


def _reads_span(dataset_dir: Path, meter_id: str) -> str:
    """Where a meter's reads are (for the message when a period has none)."""
    row = (
        utc_connection()
        .execute(
            f"select epoch_us(min(ts)), epoch_us(max(ts))"
            f" from {table_source(dataset_dir, 'interval_reads')} where meter_id = ?",
            [meter_id],
        )
        .fetchone()
    )
    if not row or row[0] is None:
        return "; the meter has no reads at all"
    lo, hi = (pd.Timestamp(int(v), unit="us", tz="UTC") for v in row)
    return f"; its reads run from {lo:%Y-%m-%d} to {hi:%Y-%m-%d} (UTC)"


def locate(dataset_dir: Path, customer_id: str, start: pd.Timestamp, end: pd.Timestamp) -> Period:
    """The customer's electric meter (the first by id) and its reads in ``[start, end)``:
    an unknown customer, or no reads there, is a :class:`BreakdownError` (404) before any
    model is needed."""
    meters = customer_meters(dataset_dir, [customer_id])
    if meters.empty:
        raise unknown_customer(dataset_dir, customer_id)
    meter = str(meters.meter_id.iloc[0])
    if count_reads(dataset_dir, meter, start, end) == 0:
        raise BreakdownError(
            "start",
            f"no electric reads of customer {customer_id!r} in [{start:%Y-%m-%d %H:%M}, "
            f"{end:%Y-%m-%d %H:%M}) UTC{_reads_span(dataset_dir, meter)}",
            404,
        )
    return Period(customer_id, meter, start, end)


@dataclass(frozen=True)
class Readings:
    """Readings a caller sent, checked: UTC times in order on a grid of ``step_minutes``."""

    ts: pd.DatetimeIndex  # UTC, increasing, unique
    kwh: np.ndarray  # float64, KWH_MIN..KWH_MAX
    step_minutes: int

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.ts[0])

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(self.ts[-1]) + pd.Timedelta(minutes=self.step_minutes)


def parse_readings(
    ts: Sequence[datetime | pd.Timestamp | str], kwh: Sequence[float], default_step: int
) -> Readings:
    """Check readings field by field (``readings[i].ts``, ``readings[i].kwh``): times as
    :func:`as_utc`, no time twice, kWh finite within the canonical range of a reading
    (:data:`KWH_MIN`..:data:`KWH_MAX`). The grid step is the largest whole number of
    minutes that every gap between readings is a multiple of (``default_step`` for one)."""
    if len(ts) != len(kwh):
        raise BreakdownError("readings", "every reading needs a ts and a kwh")
    if not len(ts):
        raise BreakdownError("readings", "must not be empty")
    times = [as_utc(t, f"readings[{i}].ts") for i, t in enumerate(ts)]
    values = np.empty(len(kwh), np.float64)
    for i, v in enumerate(kwh):
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = float("nan")
        if not (np.isfinite(f) and KWH_MIN <= f <= KWH_MAX):
            raise BreakdownError(
                f"readings[{i}].kwh",
                f"must be a number from {KWH_MIN:g} to {KWH_MAX:g} kWh (the energy of one "
                f"interval), got {v!r}",
            )
        values[i] = f
    idx = pd.DatetimeIndex(times)
    order = np.argsort(idx.asi8, kind="stable")
    sorted_ns = idx.asi8[order]
    dup = np.flatnonzero(np.diff(sorted_ns) == 0)
    if len(dup):
        i = int(order[dup[0] + 1])
        raise BreakdownError(f"readings[{i}].ts", f"a second reading at {times[i].isoformat()}")
    step = default_step
    if len(sorted_ns) > 1:
        gaps = np.diff(sorted_ns)
        if np.any(gaps % 60_000_000_000):
            raise BreakdownError("readings", "reading times must be whole minutes apart")
        step = int(np.gcd.reduce(gaps // 60_000_000_000))
    return Readings(pd.DatetimeIndex(sorted_ns, tz="UTC"), values[order], step)


def readings_series(r: Readings) -> Series:
    """Readings on their grid as mean power (W), NaN between them."""
    step_ns = r.step_minutes * 60_000_000_000
    t0 = int(r.ts.asi8[0])
    cols = (r.ts.asi8 - t0) // step_ns
    w = np.full((1, int(cols[-1]) + 1), np.nan, np.float32)
    w[0, cols] = (r.kwh * 60_000.0 / r.step_minutes).astype(np.float32)
    return Series(["readings"], t0 // 1000, r.step_minutes, w)


@dataclass(frozen=True)
class Breakdown:
    """kWh and share per appliance, and "other" (the metered total minus the appliances), of
    one period. The shares sum to one, the kWh to ``total_kwh``: the meter's kWh in the
    period (gaps interpolated), as in the feature store's monthly rows."""

    customer_id: str | None
    start: pd.Timestamp  # UTC, included
    end: pd.Timestamp  # UTC, excluded
    total_kwh: float
    kwh: pd.Series  # appliance (and "other") -> kWh
    share: pd.Series
    n_readings: int  # reads in the period (before interpolation)
    series_kw: pd.DataFrame  # per-interval kW per appliance and other (for the plot)
    label: str = ""  # the month, when the period is one

    @property
    def month(self) -> str:
        """The label: the month (``2024-07``) or the period."""
        return self.label or f"{self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M}"

    def render(self) -> str:
        lines = [
            f"{self.customer_id or 'readings'} {self.month}: {self.total_kwh:,.1f} kWh metered"
            f" ({self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC,"
            f" {self.n_readings:,} reads)",
            f"  {'appliance':<14}{'kWh':>10}{'share':>9}",
        ]
        for a in self.kwh.sort_values(ascending=False, kind="stable").index:
            lines.append(f"  {a:<14}{self.kwh[a]:>10.1f}{self.share[a]:>8.1%}")
        return "\n".join(lines)


def context(bundle: DisaggBundle, interval_minutes: int) -> pd.Timedelta:
    """Reads read beyond each edge of a period: a day, or the network's half window if
    longer, so the period's first and last readings are predicted as in a whole series."""
    window = int(getattr(bundle.est, "window", 0) or 0)
    model_interval = float(bundle.meta.get("interval_minutes", interval_minutes))
    half = pd.Timedelta(minutes=(window // 2 + 1) * model_interval)
    return max(pd.Timedelta(days=1), half)


def _breakdown(
    bundle: DisaggBundle,
    s: Series,
    inside: np.ndarray,
    customer_id: str | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    label: str,
) -> Breakdown:
    """Predict over the whole series, sum the period's intervals, share them as the feature
    export does (:func:`training.disaggregation.breakdown.shares`)."""
    w = fill_gaps(s.power_w)
    pred = _predict_w(bundle, s.interval_minutes)(w, s.times_s)  # (1, T, A) W
    k = s.kwh_per_w
    total = float(np.sum(w[0, inside], dtype=np.float64) * k)
    apps = np.sum(pred[0, inside], axis=0, dtype=np.float64) * k
    frame = pd.DataFrame([apps], columns=bundle.appliances)
    frame["total_kwh"] = total
    sh = shares(frame, bundle.appliances).iloc[0].astype(np.float64)
    kwh = sh * total
    kw = pd.DataFrame(pred[0, inside] / 1000.0, index=s.ts[inside], columns=bundle.appliances)
    kw["other"] = np.maximum(w[0, inside] / 1000.0 - kw.sum(1).to_numpy(), 0)
    n = int(np.isfinite(s.power_w[0, inside]).sum())
    return Breakdown(customer_id, start, end, total, kwh, sh, n, kw, label)


def period_breakdown(
    bundle: DisaggBundle, dataset_dir: Path, period: Period, label: str = ""
) -> Breakdown:
    """The breakdown of a customer's period (:func:`locate`): what ``wattwise disaggregate
    CUSTOMER --month`` prints and ``POST /disaggregation/breakdown`` answers."""
    interval = meter_interval(dataset_dir)
    margin = context(bundle, interval)
    s = load_series(dataset_dir, [period.meter_id], period.start - margin, period.end + margin)
    inside = np.asarray((s.ts >= period.start) & (s.ts < period.end))
    return _breakdown(bundle, s, inside, period.customer_id, period.start, period.end, label)


def readings_breakdown(
    bundle: DisaggBundle, readings: Readings, customer_id: str | None = None
) -> Breakdown:
    """The breakdown of readings a caller sent (:func:`parse_readings`), on their grid."""
    s = readings_series(readings)
    try:
        return _breakdown(
            bundle,
            s,
            np.ones(s.n_steps, bool),
            customer_id,
            readings.start,
            readings.end,
            "",
        )
    except BreakdownError:
        raise
    except DataError as exc:  # e.g. 20-minute readings for a 30-minute model
        raise BreakdownError("readings", str(exc)) from exc


def bundle_of(model: Any) -> DisaggBundle:
    """The bundle inside a loaded disaggregation pyfunc (MLflow's or BentoML's)."""
    inner = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    bundle = getattr(inner, "bundle", None)
    if bundle is None or not hasattr(bundle, "appliances"):
        raise WattwiseError(f"{type(inner).__name__} is not a wattwise disaggregation model")
    return bundle  # type: ignore[no-any-return]


def model_interval(bundle: DisaggBundle) -> int:
    """The model's reading interval in minutes (the grid of readings sent alone)."""
    return max(1, int(round(bundle.step_seconds / 60.0)))


def customer_breakdown(
    settings: Settings,
    dataset_dir: Path,
    customer_id: str,
    month: str,
    *,
    version: str = "champion",
    model: str = "disaggregation",
    bundle: DisaggBundle | None = None,
) -> Breakdown:
    """A customer's UTC calendar month (``wattwise disaggregate CUSTOMER --month``): the
    month, the customer and its reads are checked first, then the model is loaded (unless
    ``bundle`` is given), then :func:`period_breakdown`, as the service calls it."""
    start, end = month_window(month)
    period = locate(dataset_dir, customer_id, start, end)
    b = bundle or load_bundle(settings, model, version)
    return period_breakdown(b, dataset_dir, period, label=f"{start:%Y-%m}")


def breakdown_figure(bd: Breakdown, truth_kw: pd.DataFrame | None = None) -> Any:
    """Stacked areas of the month's predicted appliance loads (and, given it, the truth below,
    on the same axes scale). A bare ``Figure``: no pyplot state, no backend switch."""
    from matplotlib.figure import Figure

    rows = 1 if truth_kw is None else 2
    fig = Figure(figsize=(12, 4.5 * rows))
    axes = fig.subplots(rows, 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    cols = list(bd.series_kw.columns)
    colors = {c: f"C{i}" for i, c in enumerate(cols)}
    axes[0].stackplot(
        bd.series_kw.index.tz_localize(None),
        *[bd.series_kw[c].to_numpy() for c in cols],
        labels=[f"{c} ({bd.share[c]:.0%})" for c in cols],
        colors=[colors[c] for c in cols],
        linewidth=0,
    )
    axes[0].set_title(f"{bd.customer_id} {bd.month}: {bd.total_kwh:,.0f} kWh, predicted")
    if truth_kw is not None:
        tc = [c for c in cols if c in truth_kw.columns]
        axes[1].stackplot(
            truth_kw.index.tz_localize(None),
            *[truth_kw[c].to_numpy() for c in tc],
            colors=[colors[c] for c in tc],
            linewidth=0,
        )
        axes[1].set_title("sub-metered truth")
    for ax in axes:
        ax.set_ylabel("kW")
    axes[0].legend(loc="upper left", ncol=3, fontsize=8)
    fig.tight_layout()
    return fig


def plot_breakdown(bd: Breakdown, path: Path) -> Path:
    """A stacked-area chart of the month's predicted appliance loads, as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    breakdown_figure(bd).savefig(path, dpi=100)
    return path


def disaggregate_redd_file(
    settings: Settings,
    input_file: Path,
    out: Path,
    *,
    version: str = "champion",
    model: str = "disaggregation_redd",
    bundle: DisaggBundle | None = None,
) -> int:
    """Predict each appliance for every row of a REDD house file; write t_seconds + columns."""
    from training.disaggregation.data import read_redd_csv

    b = bundle or load_bundle(settings, model, version)
    resample = int(b.meta.get("resample_seconds", 60))
    raw, house = read_redd_csv(input_file, resample)
    # REDD files carry seconds from the recording's start, not clock time: no time input
    pred = b.predict_array(fill_gaps(house.aggregate_w[None, :]) / b.to_watts)[0] * b.to_watts
    t = raw["t_seconds"].to_numpy(np.int64)
    bins = (t - t.min()) // resample
    res = pd.DataFrame({"t_seconds": t})
    for j, a in enumerate(b.appliances):
        res[a] = np.round(pred[bins, j].astype(np.float64), 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    res.to_csv(out, index=False)
    return len(res)


def export_features(
    settings: Settings,
    dataset_dir: Path,
    *,
    version: str = "champion",
    model: str = "disaggregation",
    bundle: DisaggBundle | None = None,
    cfg: DisaggConfig | None = None,
) -> str:
    """Monthly breakdown and detection flags of every customer → features/appliances.parquet.

    ``model``: the config (under configs/models) of the registered model, unless ``cfg``
    is given."""
    if cfg is None:
        from training.config import load_model_config

        loaded = load_model_config(model)
        if not isinstance(loaded, DisaggConfig):
            raise WattwiseError(f"{model} is a {loaded.kind} config, not a disaggregation one")
        cfg = loaded
    b = bundle or load_bundle(settings, cfg.model_name, version)
    interval = meter_interval(dataset_dir)
    monthly = predict_monthly(dataset_dir, _predict_w(b, interval), b.appliances)
    frame = feature_table(dataset_dir, monthly, b.appliances, cfg.detection_kwh_per_month)
    path = write_features(frame, dataset_dir)
    scores = detection_scores(dataset_dir, frame)
    det = "; ".join(
        f"{k}: {int(v['flagged'])} flagged, precision {v['precision']:.2f} recall {v['recall']:.2f}"
        f" (of {int(v['positives'])} on record)"
        for k, v in scores.items()
    )
    return f"wrote {len(frame):,} customer-months to {path}\n  detection vs customer records: {det}"
