"""REDD house 3 (real data in ../shared/data): import → one-minute series → time split →
a model's predictions written beside t_seconds for another file in the same format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.disaggregation.conftest import TINY_EST
from training.disaggregation.config import load_disagg_config
from wattwise.errors import DataError

REDD = "nilm_redd/redd_house3_lowfreq_3s.csv.gz"


@pytest.fixture(scope="module")
def redd_slice(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first two days of house 3 (a REDD file of the same format, smaller)."""
    src = shared_data / REDD
    if not src.is_file():
        pytest.skip(f"{src} is absent")
    df = pd.read_csv(src, nrows=60_000)
    out = tmp_path_factory.mktemp("redd") / "redd_house3_slice.csv"
    df[df.t_seconds < 2 * 86_400].to_csv(out, index=False)
    return out


def test_import_resample_split_and_file_predictions(redd_slice: Path, tmp_path: Path) -> None:
    from features.ingest.redd import import_redd
    from training.disaggregation.data import read_redd_csv
    from training.disaggregation.estimators import NeuralDisaggregator
    from training.disaggregation.prepare import prepare_redd
    from training.disaggregation.pyfunc import DisaggBundle, save_bundle
    from training.disaggregation.service import disaggregate_redd_file
    from training.disaggregation.train import bundle_meta

    cfg = load_disagg_config("disaggregation_redd")
    ds = tmp_path / "redd"
    import_redd([redd_slice], ds)
    P = prepare_redd(ds, cfg)
    n = {k: P.X[k].shape[1] for k in P.X}
    # two days at one minute: the first 70 % of days (1 day) train+valid, the rest test
    assert n["train"] + n["valid"] == 1440 and n["test"] == 1440
    assert P.Y["train"].shape[-1] == 4 and np.nanmax(P.Y["train"][..., 0]) > 50  # fridge runs
    raw, house = read_redd_csv(redd_slice)
    both = np.concatenate([P.X["train"], P.X["valid"], P.X["test"]], 1)[0]
    np.testing.assert_allclose(both, house.aggregate_w, rtol=1e-4)  # import path = file path

    est = NeuralDisaggregator(list(cfg.appliances), **TINY_EST).fit(P.X["train"], P.Y["train"])
    b = DisaggBundle(save_bundle(tmp_path / "b", est, bundle_meta(cfg, P)), device="cpu")
    out = tmp_path / "pred.csv"
    rows = disaggregate_redd_file(None, redd_slice, out, bundle=b)  # type: ignore[arg-type]
    pred = pd.read_csv(out)
    assert rows == len(raw) == len(pred)
    assert list(pred.columns) == ["t_seconds", *cfg.appliances]
    assert (pred.t_seconds.to_numpy() == raw.t_seconds.to_numpy()).all()
    assert (pred[list(cfg.appliances)].to_numpy() >= 0).all()


def test_a_file_that_is_not_redd_is_refused(tmp_path: Path) -> None:
    from training.disaggregation.data import read_redd_csv

    bad = tmp_path / "x.csv"
    bad.write_text("time,power\n0,1\n")
    with pytest.raises(DataError, match="not a REDD file"):
        read_redd_csv(bad)
    with pytest.raises(DataError, match="no such file"):
        read_redd_csv(tmp_path / "missing.csv")
