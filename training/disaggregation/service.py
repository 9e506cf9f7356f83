"""Using a registered disaggregation model: a customer's month, a REDD file, the export."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.disaggregation.breakdown import (
    detection_scores,
    feature_table,
    monthly_from_predictions,
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
)
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


@dataclass
class CustomerBreakdown:
    customer_id: str
    month: str
    kwh: pd.Series  # appliance (and other) → kWh
    share: pd.Series
    total_kwh: float
    series_kw: pd.DataFrame  # per-interval kW per appliance and other (for the plot)

    def render(self) -> str:
        lines = [
            f"{self.customer_id} {self.month}: {self.total_kwh:,.1f} kWh metered",
            f"  {'appliance':<14}{'kWh':>10}{'share':>9}",
        ]
        for a in self.kwh.sort_values(ascending=False).index:
            lines.append(f"  {a:<14}{self.kwh[a]:>10.1f}{self.share[a]:>8.1%}")
        return "\n".join(lines)


def customer_breakdown(
    settings: Settings,
    dataset_dir: Path,
    customer_id: str,
    month: str,
    *,
    version: str = "champion",
    model: str = "disaggregation",
    bundle: DisaggBundle | None = None,
) -> CustomerBreakdown:
    """Predicted kWh and share per appliance of one customer's month."""
    try:
        start = pd.Timestamp(f"{month}-01", tz="UTC")
    except ValueError as exc:
        raise DataError(f"--month must be YYYY-MM, got {month!r}") from exc
    end = start + pd.offsets.MonthBegin(1)
    meters = customer_meters(dataset_dir, [customer_id])
    if meters.empty:
        raise DataError(f"customer {customer_id!r} has no electric meter in {dataset_dir}")
    b = bundle or load_bundle(settings, model, version)
    interval = meter_interval(dataset_dir)
    margin = pd.Timedelta(days=1)  # context for the windows at the month's edges
    s = load_series(dataset_dir, [meters.meter_id.iloc[0]], start - margin, end + margin)
    inside = (s.ts >= start) & (s.ts < end)
    if not np.isfinite(s.power_w[0, inside]).any():
        raise DataError(f"customer {customer_id!r} has no reads in {month}")
    pred = _predict_w(b, interval)(fill_gaps(s.power_w), s.times_s)
    sub = Series(s.meter_ids, int(start.value // 1000), s.interval_minutes, s.power_w[:, inside])
    mon = monthly_from_predictions(sub, pred[:, inside], b.appliances)
    sh = shares(mon, b.appliances).iloc[0]
    total = float(mon.total_kwh.iloc[0])
    kwh = sh * total
    kw = pd.DataFrame(pred[0, inside] / 1000.0, index=sub.ts, columns=b.appliances)
    kw["other"] = np.maximum(fill_gaps(sub.power_w)[0] / 1000.0 - kw.sum(1).to_numpy(), 0)
    return CustomerBreakdown(customer_id, month, kwh, sh, total, kw)


def breakdown_figure(bd: CustomerBreakdown, truth_kw: pd.DataFrame | None = None) -> Any:
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


def plot_breakdown(bd: CustomerBreakdown, path: Path) -> Path:
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
