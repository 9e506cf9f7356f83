"""Small pyfuncs with the disaggregation and DR-response interfaces, for the endpoint tests.

(The real models are trained in ``training/disaggregation`` and ``training/dr``; these only
follow their interfaces, so the adapters are exercised end to end.)
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

SHARES = {"fridge": 0.25, "heating": 0.75}


class SplitReadings(PythonModel):  # type: ignore[misc]
    """A window of readings in, one series (kWh per interval) per appliance out."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        kwh = model_input["kwh"].astype(float)
        return pd.DataFrame({a: kwh * s for a, s in SHARES.items()})


class UsageTimesIncentive(PythonModel):  # type: ignore[misc]
    """dr_response_v1 features + event columns in, expected kW reduction out."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        usage = model_input["usage_mean_daily_kwh_30d"].astype(float).fillna(0.0)
        inc = model_input["event_incentive_per_kwh"].astype(float).fillna(0.0)
        return pd.DataFrame({"expected_kw_reduction": usage / 24 * 0.1 * (1 + inc)})
