"""Side-by-side reference: the ``opendsm`` (OpenEEmeter 4.x) hourly model on the same homes.

Used only to compare with our baselines (a per-home fit is seconds, so this runs on a sample,
not at 10,000-customer scale). Each home is fitted once on the year before the evaluation
days (event days of that home removed) and predicts the evaluation days' hours. opendsm is an
optional dependency: :func:`available` says whether it imports.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from features.dr.panel import HourlyPanel

log = logging.getLogger(__name__)


def available() -> bool:
    """Whether opendsm imports in this environment."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from opendsm import eemeter  # noqa: F401
    except Exception as exc:  # an optional package: any import failure means "not here"
        log.info("opendsm is not usable: %s", exc)
        return False
    return True


def _frame(
    panel: HourlyPanel, row: int, days: np.ndarray, blank: np.ndarray | None
) -> pd.DataFrame:
    dates = pd.Timestamp(panel.first_day) + pd.to_timedelta(days, unit="D")
    idx = (dates.values[:, None] + np.arange(24)[None, :] * np.timedelta64(1, "h")).ravel()
    y = panel.kwh[row, days, :].copy()
    if blank is not None:
        y[blank] = np.nan
    t = panel.temp_c[max(panel.region[row], 0), days, :] * 1.8 + 32
    return pd.DataFrame(
        {"observed": y.ravel(), "temperature": t.ravel()},
        index=pd.DatetimeIndex(idx).tz_localize("UTC"),
    )


def predict_days(
    panel: HourlyPanel,
    rows: np.ndarray,
    train_days: np.ndarray,
    excl: np.ndarray,
    eval_days: list[int],
    start: int,
    end: int,
) -> np.ndarray:
    """(len(rows), len(eval_days), end-start) opendsm hourly predictions (NaN where it fails)."""
    from opendsm import eemeter

    out = np.full((len(rows), len(eval_days), end - start), np.nan)
    for i, r in enumerate(rows):  # a per-home model by design of the package: a small sample
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                base = eemeter.HourlyBaselineData(
                    _frame(panel, r, train_days, excl[r, train_days]), is_electricity_data=True
                )
                model = eemeter.HourlyModel().fit(base, ignore_disqualification=True)
                frame = _frame(panel, r, np.asarray(eval_days), None)
                rep = eemeter.HourlyReportingData(frame, is_electricity_data=True)
                pred = model.predict(rep, ignore_disqualification=True)
            # the package returns a continuous hourly range: pick the evaluation hours
            got = pred["predicted"]
            got.index = pd.DatetimeIndex(got.index).tz_convert("UTC")
            p = got.reindex(frame.index).to_numpy().reshape(len(eval_days), 24)
            out[i] = p[:, start:end]
        except Exception as exc:  # a home the package cannot model is reported as missing
            log.warning("opendsm failed for %s: %s", panel.customers[r], exc)
    return out
