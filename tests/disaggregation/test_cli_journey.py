"""``wattwise disaggregate`` as the README documents it: the customer id form, ``--month``,
``--data NAME|PATH``; every user error is one line, exit 2, before the model loads.

The model load is what a user waits for (~48 s on the demo world), so each refusal here
runs with a model loader that fails the test if it is called.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from features.synth.generate import GenerateSummary
from tests.disaggregation.test_pipeline import run_cli

ROOT = Path(__file__).resolve().parents[2]
ID_FORM = re.compile(r"^C\d{7}$")  # the synthetic utility's ids (features.synth.generate.ids)


@pytest.fixture()
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a registered model fails the test: the refusals must come first."""
    from training.disaggregation import service

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(service, "load_bundle", refuse)


def world_ids(world: GenerateSummary) -> list[str]:
    from features.tables import read_table

    return read_table(world.out_dir, "customers", ["customer_id"]).column(0).to_pylist()


def test_the_synthetic_ids_have_the_documented_form(tiny_world: GenerateSummary) -> None:
    ids = world_ids(tiny_world)
    assert ids and all(ID_FORM.match(c) for c in ids), ids[:3]


def documented_calls(text: str) -> list[str]:
    return re.findall(r"wattwise disaggregate (\S+) --month", text)


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Appliance disaggregation")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_and_the_docs_use_a_real_customer_id() -> None:
    for where, text in (
        ("README.md", readme_block()),
        ("docs/disaggregation.md", (ROOT / "docs" / "disaggregation.md").read_text()),
    ):
        calls = documented_calls(text)
        assert calls, where
        for cid in calls:
            if cid != "CUSTOMER":  # the placeholder; every example is a real id
                assert ID_FORM.match(cid), f"{where}: {cid} is not an id of the form C0000042"
    assert "--data-dir" not in readme_block()


def test_an_unknown_customer_is_refused_before_the_model_loads(
    tiny_world: GenerateSummary, no_model_load: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = str(tiny_world.out_dir)
    code, out, err = run_cli(capsys, "disaggregate", "C000123", "--month", "2024-07", "--data", ds)
    assert code == 2, (out, err)
    line = err.strip()
    assert "\n" not in line and "Traceback" not in err
    assert "C000123" in line
    example = world_ids(tiny_world)[0]
    assert example in line and "C + 7 digits" in line, line


def test_a_month_that_is_not_one_is_refused_at_parse_time(
    tiny_world: GenerateSummary, no_model_load: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = str(tiny_world.out_dir)
    cid = world_ids(tiny_world)[0]
    for bad in ("July", "0001-07", "2024-13"):
        code, out, err = run_cli(capsys, "disaggregate", cid, "--month", bad, "--data", ds)
        assert code == 2, (bad, out, err)
        assert "YYYY-MM" in err and "OutOfBounds" not in err and "Traceback" not in err, err
    # a date inside the month is the month
    code, _, err = run_cli(capsys, "disaggregate", cid, "--month", "2019-07-15", "--data", ds)
    assert code == 2 and "2019-07-01" in err and "no electric reads" in err, err


def test_data_names_a_dataset_or_a_path_and_data_dir_is_gone(
    tiny_world: GenerateSummary,
    no_model_load: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    ds = str(tiny_world.out_dir)
    cid = world_ids(tiny_world)[0]
    code, _, err = run_cli(capsys, "disaggregate", cid, "--month", "2024-07", "--data-dir", ds)
    assert code == 2 and "--data-dir" in err, err
    code, _, err = run_cli(
        capsys, "disaggregate", cid, "--month", "2024-07", "--data", str(tmp_path / "nope")
    )
    assert code == 2 and "nope" in err and "Traceback" not in err, err
    # a generated world is "synthetic" wherever it lives: the synthetic config, the check of
    # the id against that world, and the refusal of an unknown id, all before the model
    code, _, err = run_cli(capsys, "disaggregate", "C9999999", "--month", "2024-07", "--data", ds)
    assert code == 2 and "C9999999" in err, err
    # REDD files: --data redd picks the REDD config, which needs --input and --out
    code, _, err = run_cli(capsys, "disaggregate", "--data", "redd")
    assert code == 2 and "--input" in err, err
