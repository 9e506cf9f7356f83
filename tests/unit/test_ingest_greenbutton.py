"""Green Button import: units, DST, hostile and broken XML, round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.ingest.espi_time import LocalTime, local_to_utc
from features.ingest.greenbutton import export_greenbutton, import_greenbutton
from features.tables import read_table
from wattwise.errors import DataError

HEAD = (
    '<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
    'xmlns:espi="http://naesb.org/espi">\n'
)
UP = "https://x/espi/1_1/resource/Subscription/1/UsagePoint/{up}"


def _feed(
    readings: list[tuple[int, int, int]],
    uom: int | None = 72,
    p10: int = 0,
    service: int = 0,
    up: int = 1,
    quality: int | None = None,
) -> str:
    base = UP.format(up=up)
    rt = (
        (
            f'<entry><link rel="self" href="https://x/espi/1_1/resource/ReadingType/{up}"/>'
            f"<content><espi:ReadingType><espi:powerOfTenMultiplier>{p10}</espi:powerOfTenMultiplier>"
            f"<espi:uom>{uom}</espi:uom></espi:ReadingType></content></entry>\n"
        )
        if uom
        else ""
    )
    q = (
        f"<espi:ReadingQuality><espi:quality>{quality}</espi:quality></espi:ReadingQuality>"
        if quality is not None
        else ""
    )
    body = "".join(
        f"<espi:IntervalReading><espi:cost>5</espi:cost>{q}<espi:timePeriod><espi:duration>{d}"
        f"</espi:duration><espi:start>{s}</espi:start></espi:timePeriod><espi:value>{v}"
        "</espi:value></espi:IntervalReading>\n"
        for s, d, v in readings
    )
    return (
        f'<entry><link rel="self" href="{base}"/><content><espi:UsagePoint><espi:ServiceCategory>'
        f"<espi:kind>{service}</espi:kind></espi:ServiceCategory></espi:UsagePoint></content></entry>\n"
        f'<entry><link rel="self" href="{base}/MeterReading/1"/>'
        f'<link rel="related" href="https://x/espi/1_1/resource/ReadingType/{up}"/>'
        "<content><espi:MeterReading/></content></entry>\n"
        + rt
        + f'<entry><link rel="up" href="{base}/MeterReading/1/IntervalBlock"/><content>'
        f"<espi:IntervalBlock>{body}</espi:IntervalBlock></content></entry>\n"
    )


def _write(tmp_path: Path, text: str, name: str = "gb.xml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


HOURS = [(1293868800 + 3600 * i, 3600, 1000 + i) for i in range(48)]


def test_units_service_kinds_and_several_usage_points(tmp_path: Path) -> None:
    text = (
        HEAD
        + _feed(HOURS, uom=72, p10=0, up=1)
        + _feed(HOURS, uom=169, p10=-3, service=1, up=2, quality=8)
        + "</feed>\n"
    )
    rep = import_greenbutton([_write(tmp_path, text)], tmp_path / "ds")
    assert rep.tables["interval_reads"].loaded == 96
    reads = read_table(tmp_path / "ds", "interval_reads").to_pandas()
    elec = reads[reads.meter_id.str.endswith("UsagePoint/1")].sort_values("ts")
    gas = reads[reads.meter_id.str.endswith("UsagePoint/2")].sort_values("ts")
    assert elec.kwh.iloc[0] == pytest.approx(1.0)  # 1000 Wh
    assert gas.kwh.iloc[1] == pytest.approx(1.001)  # 1001 milli-therm
    assert set(gas.quality) == {8}
    meters = read_table(tmp_path / "ds", "meters").to_pandas().set_index("meter_id")
    assert sorted(meters.service_kind) == ["electric", "gas"]
    assert sorted(meters.unit) == ["kWh", "therm"]
    assert set(meters.interval_minutes) == {60}


def test_default_namespace_and_watts(tmp_path: Path) -> None:
    text = (HEAD + _feed(HOURS, uom=38)).replace("espi:", "").replace(
        'xmlns:espi="http://naesb.org/espi"', ""
    ).replace("<IntervalBlock>", '<IntervalBlock xmlns="http://naesb.org/espi">') + "</feed>"
    rep = import_greenbutton([_write(tmp_path, text)], tmp_path / "ds")
    reads = read_table(tmp_path / "ds", "interval_reads").sort_by("ts")
    assert rep.tables["interval_reads"].loaded == 48
    assert reads.column("kwh")[0].as_py() == pytest.approx(1.0)  # 1000 W for 1 h


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (HEAD + _feed(HOURS)[:-200], "truncated"),
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
            '"&lol;&lol;&lol;">]><feed xmlns="http://www.w3.org/2005/Atom">&lol2;</feed>',
            "DTD",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>&xxe;</title></feed>',
            "DTD",
        ),
        (HEAD + _feed(HOURS, uom=None) + "</feed>", "--unit"),
        (HEAD + _feed(HOURS, uom=999) + "</feed>", "uom=999"),
        ("meter_id,timestamp,kwh\nm1,2024-01-01,1\n", "not XML"),
        ('<?xml version="1.0"?><html><body/></html>', "not a Green Button"),
        ("", "empty"),
    ],
    ids=[
        "truncated",
        "billion-laughs",
        "external-entity",
        "missing-unit",
        "wrong-unit",
        "csv-file",
        "other-xml",
        "empty",
    ],
)
def test_hostile_and_broken_inputs_raise_clear_errors(
    tmp_path: Path, text: str, match: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataError, match=match) as err:
        import_greenbutton([path], tmp_path / "ds")
    assert str(path) in str(err.value)
    assert not (tmp_path / "ds" / "interval_reads").exists()  # no partial import


def test_duplicates_quarantined_and_reimport_idempotent(tmp_path: Path) -> None:
    text = HEAD + _feed(HOURS + HOURS[:5]) + "</feed>\n"
    path = _write(tmp_path, text)
    for _ in range(2):
        rep = import_greenbutton([path], tmp_path / "ds")
    assert rep.tables["interval_reads"].quarantined == {"duplicate meter_id/ts": 5}
    assert read_table(tmp_path / "ds", "interval_reads").num_rows == 48
    q = list((tmp_path / "ds" / "quarantine" / "interval_reads").glob("*.parquet"))
    assert len(q) == 1


def test_round_trip_identical(tmp_path: Path) -> None:
    text = HEAD + _feed(HOURS, p10=-1, quality=0) + _feed(HOURS, up=3) + "</feed>\n"
    import_greenbutton([_write(tmp_path, text)], tmp_path / "a")
    out = tmp_path / "export.xml"
    assert export_greenbutton(tmp_path / "a", out) == 96
    import_greenbutton([out], tmp_path / "b")
    key = [("meter_id", "ascending"), ("ts", "ascending")]
    a = read_table(tmp_path / "a", "interval_reads").sort_by(key)
    b = read_table(tmp_path / "b", "interval_reads").sort_by(key)
    assert a.equals(b)


def test_dst_rules_local_to_utc() -> None:
    # US Pacific: second Sunday of March / first Sunday of November at 02:00.
    lt = LocalTime(-28800, 3600, 0x360E2000, 0xB40E2000)
    # 2011-03-13 01:00, 03:00 local (02:00 does not exist) and 2011-11-06 01:00 twice.
    wall = np.array([1299978000, 1299981600, 1299985200, 1320541200, 1320541200, 1320544800])
    utc, bad = local_to_utc(wall, lt)
    assert bad.tolist() == [False, True, False, False, False, False]
    assert utc[0] == 1299978000 + 8 * 3600  # PST
    assert utc[2] == 1299985200 + 7 * 3600  # PDT
    assert utc[3] == 1320541200 + 7 * 3600  # first 01:00 is PDT
    assert utc[4] == 1320541200 + 8 * 3600  # second 01:00 is PST
    assert utc[5] == 1320544800 + 8 * 3600


def _values(ds: Path) -> list[tuple[str, int, float]]:
    t = read_table(ds, "interval_reads").sort_by([("meter_id", "ascending"), ("ts", "ascending")])
    return list(
        zip(t["meter_id"].to_pylist(), t["ts"].to_pylist(), t["kwh"].to_pylist(), strict=True)
    )


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("</espi:IntervalReading>\n", "</espi:IntervalReading>\n  "),
        lambda t: t.replace("<espi:value>1003</espi:value>", "<espi:value>\n 1003 </espi:value>"),
        lambda t: t.replace(
            "<espi:value>1004</espi:value>", "<espi:value>1004</espi:value><!--9-->"
        ),
        lambda t: t.replace(  # start before duration in one reading
            "<espi:duration>3600</espi:duration><espi:start>1293876000</espi:start>",
            "<espi:start>1293876000</espi:start><espi:duration>3600</espi:duration>",
        ),
        lambda t: t.replace(  # two IntervalBlocks in one entry
            "</espi:IntervalBlock></content></entry>\n",
            "</espi:IntervalBlock>\n<espi:IntervalBlock>"
            + "".join(
                f"<espi:IntervalReading><espi:timePeriod><espi:duration>3600</espi:duration>"
                f"<espi:start>{1294041600 + 3600 * i}</espi:start></espi:timePeriod>"
                f"<espi:value>7</espi:value></espi:IntervalReading>"
                for i in range(3)
            )
            + "</espi:IntervalBlock></content></entry>\n",
        ),
        lambda t: t.replace("espi:", "ns2:").replace("xmlns:espi=", "xmlns:ns2="),
    ],
    ids=["indented", "spaces-in-value", "comment", "reordered", "two-blocks", "digit-prefix"],
)
def test_unusual_layouts_parse_like_the_plain_one(tmp_path: Path, edit) -> None:  # noqa: ANN001
    plain = HEAD + _feed(HOURS) + "</feed>\n"
    import_greenbutton([_write(tmp_path, plain, "a.xml")], tmp_path / "a")
    import_greenbutton([_write(tmp_path, edit(plain), "b.xml")], tmp_path / "b")
    a, b = _values(tmp_path / "a"), _values(tmp_path / "b")
    assert b[: len(a)] == a
    assert len(b) in (48, 51)  # the two-blocks variant adds 3 readings


def test_parallel_parse_equals_sequential(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import features.ingest.greenbutton as gb

    days = [
        [(1293868800 + 86400 * d + 3600 * h, 3600, 100 * d + h) for h in range(24)]
        for d in range(40)
    ]
    body = "".join(_feed(day, up=1 + d % 3) for d, day in enumerate(days))
    path = _write(tmp_path, HEAD + body + "</feed>\n")
    import_greenbutton([path], tmp_path / "seq")
    monkeypatch.setattr(gb, "PARALLEL_MIN", 1)
    import_greenbutton([path], tmp_path / "par")
    assert _values(tmp_path / "par") == _values(tmp_path / "seq")
    assert len(_values(tmp_path / "par")) == 960
    truncated = _write(tmp_path, (HEAD + body)[: -len(body) // 4], "t.xml")
    with pytest.raises(DataError, match="truncated"):
        import_greenbutton([truncated], tmp_path / "t")
