"""Synthetic monitoring traffic for the tests: features, context columns and a prediction."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.reference import build_reference


def traffic(n: int, seed: int, *, shift: float = 0.0, tariff_p: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "usage_kwh": rng.gamma(4.0, 5.0, n) * (1 + shift),
            "bill": rng.normal(120, 30, n),
            "tenure": rng.integers(0, 4000, n).astype(float),
            "contacts": rng.poisson(1.0, n).astype(float),
            "region": rng.choice(["coastal", "inland", "mountain"], n, p=[0.4, 0.35, 0.25]),
            "rate_current_tariff": np.where(rng.random(n) < tariff_p, "tou", "flat"),
        }
    )
    x["prediction"] = 1 / (1 + np.exp(-(-3 + 0.05 * x["usage_kwh"] - 0.01 * x["bill"])))
    return x


def reference(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    t = traffic(n, seed)
    return build_reference(t.drop(columns="prediction"), t["prediction"].to_numpy(), n, seed)
