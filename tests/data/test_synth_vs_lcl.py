"""The synthetic utility against real London households (LCL, 2013, half-hourly).

The synthetic utility models a US-style territory (AC, electric heat, pools, EVs), so its
homes use more energy than London's; the *shape* of a day should still match: evening-peak
share and the spread of daily consumption across homes.
"""

from __future__ import annotations

from pathlib import Path

from features.synth.generate import GenerateSummary
from tests.synth_stats import daily_stats


def lcl_stats(shared_data: Path) -> dict[str, float]:
    f = shared_data / "lcl_smart_meters" / "halfhourly_2013_80hh.csv.gz"
    return daily_stats(
        'select LCLid meter, tstp::timestamp ts, try_cast(trim("energy(kWh/hh)") as double) kwh '
        f"from read_csv('{f}', all_varchar=true)"
    )


def test_daily_shape_matches_london(shared_data: Path, tiny_world: GenerateSummary) -> None:
    real = lcl_stats(shared_data)
    synth = daily_stats(
        "select meter_id meter, ts, kwh from "
        f"read_parquet('{tiny_world.out_dir}/interval_reads/*/*.parquet')",
        local_offset_hours=-8,
    )
    # London: mean ~10 kWh/day, evening share ~0.28 (measured on the 80 households)
    assert 5 < real["mean_daily_kwh"] < 15
    assert abs(synth["evening_peak_share"] - real["evening_peak_share"]) < 0.06
    spread_real = real["p90_daily_kwh"] / real["p10_daily_kwh"]
    spread_synth = synth["p90_daily_kwh"] / synth["p10_daily_kwh"]
    assert 0.5 < spread_synth / spread_real < 2.0
