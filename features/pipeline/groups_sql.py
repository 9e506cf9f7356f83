"""SQL of every feature group, computed from the small tables of :mod:`heavy` and the sources.

Each function returns one SELECT keyed by (customer_id, si); ``build`` joins it onto the
rows that exist (active customers at each snapshot). Windows are "days that ended before the
snapshot ``S`` and after ``S - N days``" (µs arithmetic on ``day_end``), so no value after
the snapshot is ever read.
"""

from __future__ import annotations

from features.pipeline.config import FeatureConfig
from features.schema import CONTACT_KINDS, PROGRAMS, TARIFFS


def usage_sql(cfg: FeatureConfig) -> str:
    """Usage features from the window sums ``uwin`` and the degree-day fit ``ddfit``.

    ``uwin`` (:mod:`windowstats`) has, per (customer, snapshot), counts and sums over the
    days that ended in ``(S - N days, S]``: ``cn``/``cs`` complete days and their kWh for
    N = 30, 90, 365 and ``ly`` = (S - 395 d, S - 365 d], ``cd90``/``cq90`` the sum and sum of
    squares of complete-day kWh minus their 90-day mean (corrected two-pass variance),
    ``wd*``/``we*`` weekday/weekend complete days, ``*90`` all-day sums (NULL: no non-null
    value), ``kwmax90``, ``ev30`` EV nights and ``anom30`` with its baseline ``b_mean``/``b_sd``.
    """
    avg = lambda n: f"(cs{n} / nullif(cn{n}, 0))"  # noqa: E731
    sd90 = (
        "CASE WHEN cn90 >= 2 THEN sqrt(greatest((cq90 - cd90 * cd90 / cn90) / (cn90 - 1), 0)) END"
    )
    return f"""
    SELECT a.customer_id, a.si,
      {avg(30)} AS usage_mean_daily_kwh_30d, {avg(90)} AS usage_mean_daily_kwh_90d,
      {avg(365)} AS usage_mean_daily_kwh_365d, cn365 AS usage_days_365d,
      kpeak90 / nullif(kwh90, 0) AS usage_peak_share_90d,
      1 - kpeak90 / nullif(kwh90, 0) AS usage_offpeak_share_90d,
      keve90 / nullif(kwh90, 0) AS usage_evening_share_90d,
      kwh90 / nullif(hours90, 0) / nullif(kwmax90, 0) AS usage_load_factor_90d,
      knight90 / nullif(night_h90, 0) AS usage_night_baseload_kw_90d,
      (wds90 / nullif(wdn90, 0)) / nullif(wes90 / nullif(wen90, 0), 0)
        AS usage_weekday_weekend_ratio_90d,
      {sd90} / nullif({avg(90)}, 0) AS usage_cv_daily_90d,
      CASE WHEN cn30 >= 20 AND cnly >= 20 AND {avg("ly")} > 0 THEN {avg(30)} / {avg("ly")} - 1 END
        AS usage_trend_yoy_30d,
      kwmax90 AS usage_max_demand_kw_90d,
      -- no export read counts as zero export: a meter whose export register reads 0 before
      -- its panels go up would otherwise tell a later solar install (point in time)
      coalesce(kexp90, 0) / nullif(kwh90 + coalesce(kexp90, 0), 0)
        AS usage_solar_export_share_90d,
      ev30 AS usage_ev_nights_30d,
      anom30 AS usage_anomaly_days_30d,
      f.bh AS usage_heating_slope_kwh_per_hdd, f.bc AS usage_cooling_slope_kwh_per_cdd,
      f.hb AS usage_heating_balance_c, f.cb AS usage_cooling_balance_c, f.r2 AS usage_degree_day_r2
    FROM uwin a
    LEFT JOIN ddfit f USING (customer_id, si)
    """


def ddfit_sql(cfg: FeatureConfig) -> str:
    """CalTRACK-style degree-day fit per (customer, snapshot) over the last 12 periods.

    ``ddwin`` (:func:`windowstats.degree_day_sums`) has the centred sums per (customer,
    snapshot, balance pair) over the last 12 periods (n >= min_fit_days); here the HDD+CDD,
    HDD-only and CDD-only OLS fits with positive slopes are compared by R².
    Exact ties (no day between two balance points gives the same fit) are broken the same
    way every run: R² rounded to 1e-9, then the higher heating / lower cooling balance point
    (``arg_max`` on R² alone picked by float noise, so reruns could differ).
    """
    del cfg  # the grid and min_fit_days are applied in ddwin
    return """
    WITH win AS (SELECT * FROM ddwin), both_ AS (
      SELECT *, (c22 * c1y - c12 * c2y) / (c11 * c22 - c12 * c12) AS bh,
        (c11 * c2y - c12 * c1y) / (c11 * c22 - c12 * c12) AS bc
      FROM win WHERE c11 > 1e-9 AND c22 > 1e-9 AND c11 * c22 - c12 * c12 > 1e-9 * c11 * c22
    ), models AS (
      SELECT customer_id, si, hb, cb, bh, bc, (bh * c1y + bc * c2y) / nullif(cyy, 0) AS r2
      FROM both_ WHERE bh > 0 AND bc > 0
      UNION ALL
      SELECT customer_id, si, hb, NULL, c1y / c11, 0.0, c1y * c1y / c11 / nullif(cyy, 0)
      FROM win WHERE c11 > 1e-9 AND c1y > 0
      UNION ALL
      SELECT customer_id, si, NULL, cb, 0.0, c2y / c22, c2y * c2y / c22 / nullif(cyy, 0)
      FROM win WHERE c22 > 1e-9 AND c2y > 0
      UNION ALL
      SELECT customer_id, si, NULL, NULL, 0.0, 0.0, 0.0 FROM win
    )
    SELECT customer_id, si, arg_max(hb, k) AS hb, arg_max(cb, k) AS cb,
      arg_max(bh, k) AS bh, arg_max(bc, k) AS bc, max(r2) AS r2
    FROM (SELECT *, {'r2': round(r2, 9), 'hb': coalesce(hb, -1e9), 'cb': -coalesce(cb, 1e9)} AS k
          FROM models WHERE r2 IS NOT NULL) GROUP BY ALL
    """


def shape_sql() -> str:
    """24 hourly shares of the last 3 periods (~90 days with monthly snapshots), from ``shwin``."""
    hours = ", ".join(f"h{h:02d} / nullif(tot, 0) AS shape_h{h:02d}" for h in range(24))
    return f"SELECT customer_id, si, {hours} FROM shwin ORDER BY si, customer_id"


def peer_sql(cfg: FeatureConfig) -> str:
    """Percentile and efficient-neighbour ratio within (region, dwelling type, area band)."""
    bands = cfg.area_bands_m2
    band = "CASE " + " ".join(f"WHEN floor_area_m2 < {b} THEN {i}" for i, b in enumerate(bands))
    band += f" WHEN floor_area_m2 IS NOT NULL THEN {len(bands)} END"
    return f"""
    WITH u AS (
      SELECT g.customer_id, g.si, g.usage_mean_daily_kwh_90d AS v,
        c.region, c.dwelling_type, {band} AS band
      FROM g_usage g JOIN cust c USING (customer_id) WHERE g.usage_mean_daily_kwh_90d IS NOT NULL
    ), q AS (
      SELECT si, region, dwelling_type, band, count(*) AS n, quantile_cont(v, 0.2) AS p20
      FROM u GROUP BY ALL
    )
    SELECT u.customer_id, u.si, q.n AS peer_group_size,
      percent_rank() OVER (PARTITION BY u.si, u.region, u.dwelling_type, u.band ORDER BY u.v)
        AS peer_percentile_90d,
      u.v / nullif(q.p20, 0) AS peer_ratio_to_efficient_90d
    FROM u JOIN q ON q.si = u.si AND q.region IS NOT DISTINCT FROM u.region
      AND q.dwelling_type IS NOT DISTINCT FROM u.dwelling_type AND q.band IS NOT DISTINCT FROM u.band
    """


def rate_sql(has_bills: bool) -> str:
    """Last 12 periods of hourly load priced under every tariff (all 48 day-type/hour slots).

    ``rwin`` has the 12-period kWh per slot (``k<weekend>_<hour>``, NULL: no read) and hours;
    ``pw`` the summed price of each slot per (snapshot, full tariff), so the energy cost is
    one 48-term sum per row (NULL when the window has no non-null read, as ``sum`` of none).
    """
    slots_ = [(w, h) for w in (0, 1) for h in range(24)]
    prices = ", ".join(
        f"sum(sl.price) FILTER (WHERE sl.weekend = {bool(w)} AND sl.hr = {h}) AS p{w}_{h:02d}"
        for w, h in slots_
    )
    energy = " + ".join(f"coalesce(l.k{w}_{h:02d} * pw.p{w}_{h:02d}, 0)" for w, h in slots_)
    cost_cols = ", ".join(
        f"max(cost) FILTER (WHERE tariff = '{t}') AS rate_cost_12m_{t}" for t in TARIFFS
    )
    bill_tariff = (
        """(SELECT b.customer_id, s.si, arg_max(b.tariff, b.bill_month) AS bt FROM src_bills b
            JOIN snaps s ON b.bill_month + INTERVAL 1 MONTH <= s.sd GROUP BY ALL)"""
        if has_bills
        else "(SELECT NULL::VARCHAR AS customer_id, NULL::INTEGER AS si, NULL::VARCHAR AS bt)"
    )
    return f"""
    WITH r AS (
      SELECT s.si, t.tariff, t.day_type, t.hour_start, t.hour_end, t.price_per_kwh AS price,
        t.standing_charge_per_day AS sc,
        row_number() OVER (PARTITION BY s.si, t.tariff, t.day_type, t.hour_start
                           ORDER BY t.valid_from DESC NULLS LAST) AS rk
      FROM src_tariff_rates t JOIN snaps s ON coalesce(t.valid_from, DATE '1900-01-01') < s.sd
    ), slots AS (
      SELECT r.si, r.tariff, wk.weekend, hh.hr, r.price, r.sc
      FROM (SELECT * FROM r WHERE rk = 1) r
      CROSS JOIN (VALUES (false), (true)) wk(weekend)
      CROSS JOIN (SELECT range::INTEGER AS hr FROM range(24)) hh
      WHERE hh.hr >= r.hour_start AND hh.hr < r.hour_end
        AND (r.day_type = 'all' OR (r.day_type = 'weekend') = wk.weekend)
    ), full_ AS (
      SELECT si, tariff FROM slots GROUP BY ALL HAVING count(DISTINCT (weekend, hr)) = 48
    ), pw AS (
      SELECT sl.si, sl.tariff, max(sl.sc) AS sc, {prices}
      FROM slots sl JOIN full_ f USING (si, tariff) GROUP BY ALL
    ), days AS (
      SELECT customer_id, si, hours / 24.0 AS days FROM rwin
    ), cost AS (
      SELECT l.customer_id, l.si, pw.tariff, ({energy}) + l.hours / 24.0 * pw.sc AS cost
      FROM rwin l JOIN pw USING (si)
    ), piv AS (
      SELECT customer_id, si, {cost_cols}, arg_min(tariff, cost) AS best, min(cost) AS best_cost,
        map_from_entries(list((tariff, cost))) AS costs
      FROM cost GROUP BY ALL
    )
    SELECT p.customer_id, p.si, round(d.days)::BIGINT AS rate_days_12m,
      {", ".join(f"rate_cost_12m_{t}" for t in TARIFFS)},
      coalesce(bt.bt, c.tariff) AS rate_current_tariff,
      p.costs[coalesce(bt.bt, c.tariff)] AS rate_current_cost_12m,
      p.best AS rate_best_tariff,
      greatest(p.costs[coalesce(bt.bt, c.tariff)] - p.best_cost, 0) AS rate_best_saving_12m
    FROM piv p JOIN days d USING (customer_id, si) JOIN cust c USING (customer_id)
    LEFT JOIN {bill_tariff} bt USING (customer_id, si)
    """


def billing_sql(has_payments: bool) -> str:
    """Bills known at the snapshot (month m from the 1st of m+1) and payments known by then."""
    pay = (
        """, p AS (
      SELECT s.si, y.customer_id, y.bill_month, y.arrears, y.days_late,
        (y.paid_date IS NULL OR coalesce(y.days_late, 0) > 0) AS late
      FROM src_payments y JOIN src_bills b USING (customer_id, bill_month)
      JOIN snaps s ON coalesce(y.paid_date, b.due_date) < s.sd
    ), pa AS (
      SELECT customer_id, si, arg_max(arrears, bill_month) AS pay_arrears,
        count(*) FILTER (WHERE late AND bill_month >= (SELECT sd FROM snaps x WHERE x.si = p.si)
                         - INTERVAL 13 MONTH) AS pay_late_count_12m,
        avg(days_late) FILTER (WHERE bill_month >= (SELECT sd FROM snaps x WHERE x.si = p.si)
                               - INTERVAL 13 MONTH) AS pay_mean_days_late_12m
      FROM p GROUP BY ALL
    )"""
        if has_payments
        else """, pa AS (SELECT NULL::VARCHAR AS customer_id, NULL::INTEGER AS si,
          NULL::DOUBLE AS pay_arrears, NULL::BIGINT AS pay_late_count_12m,
          NULL::DOUBLE AS pay_mean_days_late_12m)"""
    )
    return f"""
    WITH k AS (
      SELECT s.si, s.sd, b.customer_id, b.bill_month, b.amount, b.kwh
      FROM src_bills b JOIN snaps s ON b.bill_month + INTERVAL 1 MONTH <= s.sd
    ), last AS (
      SELECT customer_id, si, max(bill_month) AS lm FROM k GROUP BY ALL
    ), f AS (
      SELECT k.customer_id, k.si,
        max(amount) FILTER (WHERE bill_month = lm) AS bill_last_amount,
        max(kwh) FILTER (WHERE bill_month = lm) AS bill_last_kwh,
        max(amount) FILTER (WHERE bill_month = lm - INTERVAL 12 MONTH) AS ly,
        max(amount) FILTER (WHERE bill_month = lm - INTERVAL 11 MONTH) AS ly1,
        max(amount) FILTER (WHERE bill_month = lm - INTERVAL 10 MONTH) AS ly2,
        avg(amount) FILTER (WHERE bill_month >= lm - INTERVAL 14 MONTH
                              AND bill_month < lm - INTERVAL 11 MONTH) AS ly1_m3,
        count(*) FILTER (WHERE bill_month >= lm - INTERVAL 14 MONTH
                           AND bill_month < lm - INTERVAL 11 MONTH) AS ly1_n3,
        avg(amount) FILTER (WHERE bill_month >= lm - INTERVAL 13 MONTH
                              AND bill_month < lm - INTERVAL 10 MONTH) AS ly2_m3,
        count(*) FILTER (WHERE bill_month >= lm - INTERVAL 13 MONTH
                           AND bill_month < lm - INTERVAL 10 MONTH) AS ly2_n3,
        avg(amount) FILTER (WHERE bill_month >= lm - INTERVAL 3 MONTH AND bill_month < lm) AS m3,
        count(*) FILTER (WHERE bill_month >= lm - INTERVAL 3 MONTH AND bill_month < lm) AS n3,
        count(*) FILTER (WHERE bill_month + INTERVAL 13 MONTH > sd) AS bill_count_12m
      FROM k JOIN last USING (customer_id, si) GROUP BY ALL
    ){pay}
    SELECT f.customer_id, f.si, bill_last_amount, bill_last_kwh,
      bill_last_amount / nullif(ly, 0) - 1 AS bill_change_yoy,
      CASE WHEN n3 = 3 THEN bill_last_amount / nullif(m3, 0) END AS bill_shock_ratio,
      CASE WHEN ly1_n3 = 3 THEN ly1 / nullif(ly1_m3, 0) END AS bill_next_shock_last_year,
      CASE WHEN ly2_n3 = 3 THEN ly2 / nullif(ly2_m3, 0) END AS bill_next2_shock_last_year,
      bill_count_12m, pa.pay_arrears, pa.pay_late_count_12m, pa.pay_mean_days_late_12m
    FROM f LEFT JOIN pa USING (customer_id, si)
    """


LONG_CONTACT_RATES = {
    "eng_web_logins_per_30d_365d": "kind = 'login' AND channel = 'web'",
    "eng_app_logins_per_30d_365d": "kind = 'login' AND channel = 'app'",
    "eng_email_inquiries_per_30d_365d": "kind = 'inquiry' AND channel = 'email'",
    "eng_web_inquiries_per_30d_365d": "kind = 'inquiry' AND channel = 'web'",
    "eng_complaints_per_30d_365d": "kind = 'complaint'",
}


def engagement_sql(present: set[str]) -> str:
    """Contacts, outages and surveys before the snapshot; tenure and consents."""
    d90 = "INTERVAL 90 DAY"
    parts = ["SELECT b.customer_id, b.si"]
    joins = []
    kinds = ", ".join(f"count(*) FILTER (WHERE kind = '{k}') AS eng_{k}_90d" for k in CONTACT_KINDS)
    kind_cols = ", ".join(f"coalesce(ct.eng_{k}_90d, 0) AS eng_{k}_90d" for k in CONTACT_KINDS)
    if "contacts" in present:
        joins.append(f"""LEFT JOIN (SELECT x.customer_id, s.si, count(*) AS eng_contacts_90d, {kinds},
          count(*) FILTER (WHERE channel = 'call') AS eng_calls_90d,
          count(*) FILTER (WHERE kind = 'login' AND channel IN ('web', 'app')) AS eng_digital_logins_90d
          FROM src_contacts x JOIN snaps s ON x.ts < s.ts AND x.ts >= s.ts - {d90} GROUP BY ALL) ct
          USING (customer_id, si)""")
        parts.append(
            f"coalesce(ct.eng_contacts_90d, 0) AS eng_contacts_90d, {kind_cols}, "
            "coalesce(ct.eng_calls_90d, 0) AS eng_calls_90d, "
            "coalesce(ct.eng_digital_logins_90d, 0) AS eng_digital_logins_90d"
        )
    else:
        nulls = ", ".join(f"NULL::BIGINT AS eng_{k}_90d" for k in CONTACT_KINDS)
        parts.append(
            f"NULL::BIGINT AS eng_contacts_90d, {nulls}, NULL::BIGINT AS eng_calls_90d, "
            "NULL::BIGINT AS eng_digital_logins_90d"
        )
    long_nulls = ", ".join(f"NULL::DOUBLE AS {c}" for c in LONG_CONTACT_RATES)
    if "contacts" in present:
        # Stable traits (digital engagement, price sensitivity, temper) show in contact rates
        # over a year far more reliably than in 90 days; per 30 days of observed history, i.e.
        # since the later of the contact log's first record and the customer's tenure start.
        rates = ", ".join(
            f"count(*) FILTER (WHERE {cond}) AS {c}" for c, cond in LONG_CONTACT_RATES.items()
        )
        joins.append(f"""LEFT JOIN (SELECT x.customer_id, s.si, {rates}
          FROM src_contacts x JOIN snaps s ON x.ts < s.ts AND x.ts >= s.ts - INTERVAL 365 DAY
          GROUP BY ALL) cy USING (customer_id, si)""")
        hist = (
            "least(365, date_diff('day', greatest((SELECT min(ts) FROM src_contacts)::DATE, "
            "c.tenure_start::DATE), b.sd))"
        )
        parts.append(
            ", ".join(
                f"CASE WHEN {hist} >= 30 THEN coalesce(cy.{c}, 0) * 30.0 / {hist} END AS {c}"
                for c in LONG_CONTACT_RATES
            )
        )
    else:
        parts.append(long_nulls)
    if "outages" in present:
        end = "x.start + to_microseconds((x.minutes * 60000000)::BIGINT)"
        joins.append(f"""LEFT JOIN (SELECT x.customer_id, s.si, count(*) AS n, sum(x.minutes) AS mins
          FROM src_outages x JOIN snaps s ON {end} < s.ts AND x.start >= s.ts - {d90}
          GROUP BY ALL) o USING (customer_id, si)""")
        parts.append(
            "coalesce(o.n, 0) AS eng_outages_90d, coalesce(o.mins, 0) AS eng_outage_minutes_90d"
        )
    else:
        parts.append("NULL::BIGINT AS eng_outages_90d, NULL::DOUBLE AS eng_outage_minutes_90d")
    if "surveys" in present:
        joins.append("""LEFT JOIN (SELECT x.customer_id, s.si, arg_max(x.satisfaction, x.ts) AS sat,
          date_diff('day', max(x.ts), s.ts) AS since
          FROM src_surveys x JOIN snaps s ON x.ts < s.ts GROUP BY x.customer_id, s.si, s.ts) sv
          USING (customer_id, si)""")
        parts.append("sv.sat::BIGINT AS eng_last_satisfaction, sv.since AS eng_days_since_survey")
    else:
        parts.append("NULL::BIGINT AS eng_last_satisfaction, NULL::BIGINT AS eng_days_since_survey")
    parts.append(
        "date_diff('day', c.tenure_start, b.sd) AS eng_tenure_days, "
        "c.consent_marketing AS eng_consent_marketing, c.consent_email AS eng_consent_email, "
        "c.consent_sms AS eng_consent_sms, c.consent_data_sharing AS eng_consent_data_sharing"
    )
    return ", ".join(parts) + " FROM base b JOIN cust c USING (customer_id) " + " ".join(joins)


def programs_sql(present: set[str]) -> str:
    """Enrolment at the snapshot, offers over 90 days, DR calls over 365 days."""
    cols = ["b.customer_id", "b.si"]
    joins = []
    if "enrollments" in present:
        en = ", ".join(f"bool_or(program = '{p}') AS e_{p}" for p in PROGRAMS)
        joins.append(f"""LEFT JOIN (SELECT x.customer_id, s.si, {en} FROM src_enrollments x
          JOIN snaps s ON x.enrolled_at < s.ts AND (x.ended_at IS NULL OR x.ended_at >= s.ts)
          GROUP BY ALL) en USING (customer_id, si)""")
        cols += [f"coalesce(en.e_{p}, false) AS prog_enrolled_{p}" for p in PROGRAMS]
    else:
        cols += [f"NULL::BOOLEAN AS prog_enrolled_{p}" for p in PROGRAMS]
    if "offers" in present:
        of = ", ".join(f"count(*) FILTER (WHERE program = '{p}') AS o_{p}" for p in PROGRAMS)
        joins.append(f"""LEFT JOIN (SELECT x.customer_id, s.si, {of} FROM src_offers x
          JOIN snaps s ON x.sent_at < s.ts AND x.sent_at >= s.ts - INTERVAL 90 DAY
          GROUP BY ALL) ofr USING (customer_id, si)""")
        cols += [f"coalesce(ofr.o_{p}, 0) AS prog_offers_{p}_90d" for p in PROGRAMS]
        # an offer works in the month it is sent and the next: how long ago the last one was
        last = ", ".join(
            f"date_diff('day', max(x.sent_at) FILTER (WHERE program = '{p}'), s.ts) AS d_{p}"
            for p in PROGRAMS
        )
        joins.append(f"""LEFT JOIN (SELECT x.customer_id, s.si, {last} FROM src_offers x
          JOIN snaps s ON x.sent_at < s.ts AND x.sent_at >= s.ts - INTERVAL 365 DAY
          GROUP BY x.customer_id, s.si, s.ts) lo USING (customer_id, si)""")
        cols += [f"lo.d_{p} AS prog_days_since_offer_{p}" for p in PROGRAMS]
    else:
        cols += [f"NULL::BIGINT AS prog_offers_{p}_90d" for p in PROGRAMS]
        cols += [f"NULL::BIGINT AS prog_days_since_offer_{p}" for p in PROGRAMS]
    if {"events", "event_participants"} <= present:
        joins.append("""LEFT JOIN (SELECT x.customer_id, s.si, count(*) AS n
          FROM src_event_participants x JOIN src_events e USING (event_id)
          JOIN snaps s ON e.start < s.ts AND e.start >= s.ts - INTERVAL 365 DAY
          WHERE x.called AND e.kind = 'dr' GROUP BY ALL) dr USING (customer_id, si)""")
        cols.append("coalesce(dr.n, 0) AS prog_dr_events_called_365d")
    else:
        cols.append("NULL::BIGINT AS prog_dr_events_called_365d")
    cols.append("NULL::DOUBLE AS dr_mean_reduction_kw")
    return "SELECT " + ", ".join(cols) + " FROM base b " + " ".join(joins)


def premise_sql() -> str:
    """The home and household from the customers table (fields no program changes)."""
    cols = {
        "region": "prem_region",
        "dwelling_type": "prem_dwelling_type",
        "floor_area_m2": "prem_floor_area_m2",
        "build_year": "prem_build_year",
        "occupants": "prem_occupants",
        "heating_fuel": "prem_heating_fuel",
        "has_ac": "prem_has_ac",
        "has_pool": "prem_has_pool",
        "smart_thermostat": "prem_smart_thermostat",
        "income_band": "prem_income_band",
    }
    sel = ", ".join(f"c.{src} AS {dst}" for src, dst in cols.items())
    return f"SELECT b.customer_id, b.si, {sel} FROM base b JOIN cust c USING (customer_id)"
