"""Green Button (NAESB ESPI) import and export.

Parsing streams the file in chunks and never builds the whole tree:

* the prolog is checked first: a DTD (``<!DOCTYPE``/``<!ENTITY``) anywhere is refused, so no
  entity can be expanded or fetched (billion laughs, external entities); with no DTD, any
  entity reference other than the five XML ones is an error;
* the feed is split into Atom ``<entry>`` elements (never nested). Metadata entries
  (UsagePoint, MeterReading, ReadingType, LocalTimeParameters, UsageSummary) are parsed with
  ``defusedxml`` (DTDs and entities forbidden);
* IntervalBlock entries, which hold nearly every byte of a large file, are lexed with a few
  compiled regular expressions into arrays (start, duration, value, cost, quality), checked
  (one timePeriod and value per reading, counts agree) and converted with Arrow. A block that
  breaks the expected shape falls back to the ``defusedxml`` parser. Memory is bounded by the
  readings themselves (about 40 bytes each), not by the file text.

Values are ``value × 10^powerOfTenMultiplier`` in the ReadingType's ``uom`` and normalised to
kWh (electric), therm (gas) or m3 (water and gas in volume). The original integers are kept in
side tables ``greenbutton_raw`` (one row per reading) and ``greenbutton_reading_types`` (one row
per MeterReading), from which :func:`export_greenbutton` rebuilds the feed exactly.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.ingest.common import ImportReport, check_not_empty, load_table, write_side_table
from features.ingest.espi_time import LocalTime, iana_zone, local_to_utc
from wattwise.errors import DataError

log = logging.getLogger(__name__)

ESPI_NS = "http://naesb.org/espi"
ATOM_NS = "http://www.w3.org/2005/Atom"
CHUNK = 1 << 24

# uom code -> (canonical unit, factor from the base unit to the canonical unit, is power)
UOM: dict[int, tuple[str, float, bool]] = {
    72: ("kWh", 1e-3, False),  # Wh
    38: ("kWh", 1e-3, True),  # W: average power over the interval
    169: ("therm", 1.0, False),  # therm
    42: ("m3", 1.0, False),  # cubic metre
    119: ("m3", 0.028316846592, False),  # cubic foot
    128: ("m3", 0.003785411784, False),  # US gallon
}
UNIT_NAMES = {"wh": 72, "kwh": 72, "w": 38, "therm": 169, "m3": 42, "ft3": 119, "gal": 128}
UNIT_POWER = {"wh": 0, "kwh": 3, "w": 0, "therm": 0, "m3": 0, "ft3": 0, "gal": 0}
SERVICE = {0: "electric", 1: "gas", 2: "water"}
FLOW_REVERSE = 19

_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.I)
_ROOT = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?)([A-Za-z_][\w.-]*)([^>]*)>")
_NSDECL = re.compile(rb"""xmlns(:[\w.-]+)?\s*=\s*("[^"]*"|'[^']*')""")
_LINK = re.compile(rb"<(?:[\w.-]+:)?link\b([^>]*)>")
_ATTR = re.compile(rb"""(rel|href)\s*=\s*("[^"]*"|'[^']*')""")
_BLOCK_END = re.compile(rb"</(?:[\w.-]+:)?IntervalBlock\s*>")
_READING_OPEN = re.compile(rb"<(?:[\w.-]+:)?IntervalReading\s*>")
_READING_OPEN_ANY = re.compile(rb"<(?:[\w.-]+:)?IntervalReading\b")
_READING_CLOSE = re.compile(rb"</(?:[\w.-]+:)?IntervalReading\s*>")
_READING_PREFIX = re.compile(rb"<([\w.-]+:)?IntervalReading\b")
_FIELDS = ("start", "duration", "value", "cost", "quality")


@lru_cache(maxsize=16)
def _reading_re(prefix: bytes) -> re.Pattern[bytes]:
    """One pattern for a whole IntervalReading in schema order: one regex pass per block."""
    p = re.escape(prefix)

    def el(name: bytes) -> bytes:
        return b"<" + p + name + rb">\s*([^<\s]*)\s*</" + p + name + rb">\s*"

    return re.compile(
        b"<"
        + p
        + rb"IntervalReading>\s*(?:"
        + el(b"cost")
        + b")?"
        + b"(?:<"
        + p
        + rb"ReadingQuality>\s*"
        + el(b"quality")
        + b"</"
        + p
        + rb"ReadingQuality>\s*)?"
        + b"<"
        + p
        + rb"timePeriod>\s*"
        + el(b"duration")
        + el(b"start")
        + b"</"
        + p
        + rb"timePeriod>\s*"
        + el(b"value")
        + b"</"
        + p
        + rb"IntervalReading>"
    )


@lru_cache(maxsize=16)
def _field_res(prefix: bytes) -> dict[str, re.Pattern[bytes]]:
    """Patterns with a literal start (``<espi:value>``), which the regex engine finds fast."""
    p = re.escape(prefix)
    return {
        n: re.compile(b"<" + p + n.encode() + rb">([^<]*)</" + p + n.encode() + b">")
        for n in _FIELDS
    }


@dataclass
class _MeterReading:
    key: str
    usage_point: str
    chunks: dict[str, list[pa.Array]] = field(default_factory=dict)
    buf: dict[str, list[bytes]] = field(default_factory=dict)
    n_buf: int = 0
    n: int = 0
    has_cost: bool = False
    has_quality: bool = False

    def add(self, fields: dict[str, list[bytes] | None], n: int) -> None:
        for name in ("start", "duration", "value", "cost", "quality"):
            vals = fields.get(name)
            if name in ("cost", "quality"):
                if vals:
                    self.has_cost |= name == "cost"
                    self.has_quality |= name == "quality"
                if vals is None or len(vals) == 0:
                    vals = [b""] * n  # empty means null, converted below
            self.buf.setdefault(name, []).extend(vals)
        self.n_buf += n
        self.n += n
        if self.n_buf >= 262_144:
            self.flush()

    def flush(self) -> None:
        if not self.n_buf:
            return
        for name, vals in self.buf.items():
            arr = pc.utf8_trim_whitespace(pa.array(vals, pa.binary()).cast(pa.string()))
            if name in ("cost", "quality"):
                arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
            try:
                self.chunks.setdefault(name, []).append(arr.cast(pa.int64()))
            except pa.ArrowInvalid as exc:
                raise DataError(f"IntervalReading {name} is not an integer: {exc}") from exc
        self.buf = {}
        self.n_buf = 0

    def column(self, name: str) -> np.ndarray | pa.ChunkedArray:
        self.flush()
        return pa.chunked_array(self.chunks.get(name, []), pa.int64())


@dataclass
class _Feed:
    path: Path
    ns: bytes = b""
    usage_points: dict[str, dict] = field(default_factory=dict)
    meter_readings: dict[str, _MeterReading] = field(default_factory=dict)
    mr_reading_type: dict[str, str] = field(default_factory=dict)
    reading_types: dict[str, dict] = field(default_factory=dict)
    local_times: dict[str, LocalTime] = field(default_factory=dict)
    up_ltp: dict[str, str] = field(default_factory=dict)
    summaries: int = 0


def _key(href: str, upto: str) -> str | None:
    """Resource path up to and including ``upto/<id>`` (without the host and /resource/)."""
    m = re.search(rf"(?:^|/)((?:[^/]+/)*?{upto}/[^/]+)", href)
    if not m:
        return None
    path = m.group(1)
    if "/resource/" in "/" + path:
        path = ("/" + path).split("/resource/", 1)[1]
    path = re.sub(r"^https?:/+[^/]+/", "", path)
    return path.strip("/")


def _links(entry: bytes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for attrs in _LINK.findall(entry):
        d = {k.decode(): v[1:-1].decode("utf-8", "replace") for k, v in _ATTR.findall(attrs)}
        out.setdefault(d.get("rel", ""), []).append(d.get("href", ""))
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el, name: str) -> str | None:  # noqa: ANN001 - ElementTree element
    for child in el.iter():
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _iter_entries(path: Path, feed: _Feed):  # noqa: ANN202 - generator of bytes
    """Yield each ``<entry>...</entry>`` of the feed as bytes; check prolog and truncation."""
    with open(path, "rb") as f:
        buf = f.read(CHUNK)
        if not buf.strip():
            raise DataError(f"{path}: file is empty")
        if buf.startswith(b"\xef\xbb\xbf"):
            buf = buf[3:]
        if _DTD.search(buf):
            raise DataError(f"{path}: XML with a DTD or entity declarations is refused (unsafe)")
        pos = 0
        while True:  # skip declaration, PIs and comments to the root element
            m = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->)", re.S).match(buf, pos)
            if not m:
                break
            pos = m.end()
        root = _ROOT.match(buf, pos) if buf[pos:].lstrip()[:1] == b"<" else None
        if root is None:
            root = _ROOT.search(buf, pos)
        if root is None or not buf[pos : root.start()].strip() == b"":
            raise DataError(
                f"{path}: not XML (no root element found): is this a Green Button file?"
            )
        prefix, name = root.group(1), root.group(2)
        if name != b"feed":
            raise DataError(
                f"{path}: root element is <{name.decode()}>, not an Atom <feed>: "
                "not a Green Button file"
            )
        feed.ns = b" ".join(
            b"xmlns" + (p or b"") + b"=" + v for p, v in _NSDECL.findall(root.group(3))
        )
        entry_open = re.compile(rb"<" + re.escape(prefix) + rb"entry\b")
        entry_close = re.compile(rb"</" + re.escape(prefix) + rb"entry\s*>")
        feed_close = re.compile(rb"</" + re.escape(prefix) + rb"feed\s*>")
        pos = root.end()
        eof = False
        while True:
            m = entry_open.search(buf, pos)
            end = entry_close.search(buf, m.end()) if m else None
            if m and end:
                yield buf[m.start() : end.end()]
                pos = end.end()
                continue
            if eof:
                if m:
                    raise DataError(f"{path}: truncated XML (an <entry> is not closed)")
                if not feed_close.search(buf, pos):
                    raise DataError(f"{path}: truncated XML (no closing </feed>)")
                return
            keep = m.start() if m else max(pos, len(buf) - 64)
            buf = buf[keep:]
            pos = 0
            more = f.read(CHUNK)
            if _DTD.search(more):
                raise DataError(
                    f"{path}: XML with a DTD or entity declarations is refused (unsafe)"
                )
            eof = not more
            buf += more


def _parse_meta(feed: _Feed, entry: bytes) -> None:
    from defusedxml import DefusedXmlException
    from defusedxml import ElementTree as DefusedET

    wrapped = b"<w " + feed.ns + b">" + entry + b"</w>"
    try:
        el = DefusedET.fromstring(
            wrapped, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (DefusedXmlException, SyntaxError) as exc:
        raise DataError(f"{feed.path}: malformed or unsafe XML in an entry: {exc}") from exc
    links = _links(entry)
    self_href = (links.get("self") or [""])[0]
    content = next((c for c in el.iter() if _local(c.tag) == "content"), None)
    if content is None or len(content) == 0:
        return
    res = content[0]
    kind = _local(res.tag)
    if kind == "UsagePoint":
        key = _key(self_href, "UsagePoint") or f"UsagePoint/{len(feed.usage_points) + 1}"
        sk = _text(res, "kind")
        feed.usage_points[key] = {"service": int(sk) if sk not in (None, "") else None}
        for href in links.get("related", []):
            if "LocalTimeParameters" in href:
                feed.up_ltp[key] = _key(href, "LocalTimeParameters") or href
    elif kind == "MeterReading":
        key = _key(self_href, "MeterReading")
        for href in links.get("related", []):
            if "ReadingType" in href and key:
                feed.mr_reading_type[key] = _key(href, "ReadingType") or href
    elif kind == "ReadingType":
        key = _key(self_href, "ReadingType") or f"ReadingType/{len(feed.reading_types) + 1}"
        rt = {}
        for child in res:
            name = _local(child.tag)
            txt = (child.text or "").strip()
            if txt.lstrip("-").isdigit():
                rt[name] = int(txt)
        feed.reading_types[key] = rt
    elif kind == "LocalTimeParameters":
        key = _key(self_href, "LocalTimeParameters") or "LocalTimeParameters/1"

        def num(n: str, default: int, base: int = 10) -> int:
            t = _text(res, n)
            return int(t, base) if t else default

        feed.local_times[key] = LocalTime(
            num("tzOffset", 0),
            num("dstOffset", 0),
            num("dstStartRule", 0xFFFFFFFF, 16),
            num("dstEndRule", 0xFFFFFFFF, 16),
        )
    elif kind in ("UsageSummary", "ElectricPowerUsageSummary"):
        feed.summaries += 1
    elif kind == "IntervalBlock":
        _blocks_slow(feed, entry, el, links)


def _reading_key(feed: _Feed, links: dict[str, list[str]]) -> tuple[str, str]:
    hrefs = links.get("self", []) + links.get("up", [])
    for href in hrefs:
        mr = _key(href, "MeterReading")
        if mr:
            up = _key(href, "UsagePoint") or "UsagePoint/1"
            return mr, up
    raise DataError(f"{feed.path}: an IntervalBlock entry has no link to its MeterReading")


def _blocks_slow(feed: _Feed, entry: bytes, el, links: dict[str, list[str]]) -> None:  # noqa: ANN001
    """Parse IntervalBlocks of a (defusedxml) tree: the fallback for unusual layouts."""
    mr_key, up = _reading_key(feed, links)
    mr = feed.meter_readings.setdefault(mr_key, _MeterReading(mr_key, up))
    for block in (b for b in el.iter() if _local(b.tag) == "IntervalBlock"):
        rows: dict[str, list[bytes] | None] = {k: [] for k in _FIELDS}
        readings = [r for r in block.iter() if _local(r.tag) == "IntervalReading"]
        for r in readings:
            tp = next((c for c in r if _local(c.tag) == "timePeriod"), None)
            if tp is None or _text(tp, "start") is None or _text(r, "value") is None:
                raise DataError(f"{feed.path}: an IntervalReading lacks timePeriod or value")
            rows["start"].append(_text(tp, "start").encode())
            rows["duration"].append((_text(tp, "duration") or "").encode())
            value = next((c for c in r if _local(c.tag) == "value"), None)
            rows["value"].append((value.text or "").encode())
            rows["cost"].append((_text(r, "cost") or "").encode())
            rows["quality"].append((_text(r, "quality") or "").encode())
        mr.add(rows, len(readings))


def _blocks_fast(feed: _Feed, entry: bytes) -> None:
    """Lex the IntervalBlocks of one entry into arrays (the hot path)."""
    cut = entry.find(b"content")
    links = _links(entry[: cut if cut > 0 else len(entry)])
    mr_key, up = _reading_key(feed, links)
    mr = feed.meter_readings.get(mr_key)
    if mr is None:
        mr = feed.meter_readings[mr_key] = _MeterReading(mr_key, up)
    pm = _READING_PREFIX.search(entry)
    prefix = (pm.group(1) or b"") if pm else b""
    open_tag = b"<" + prefix + b"IntervalReading>"
    for block in entry.split(b"</" + prefix + b"IntervalBlock>")[:-1]:
        first = block.find(open_tag)
        if first < 0:
            continue
        body = block[first:]
        n = body.count(open_tag)
        whole = _reading_re(prefix).findall(body)
        if len(whole) == n and body.count(b"IntervalReading") == 2 * n:
            cost, quality, duration, start, value = zip(*whole, strict=True) if n else ([],) * 5
            mr.add(
                {
                    "start": start,
                    "duration": duration,
                    "value": value,
                    "cost": cost,
                    "quality": quality,
                },
                n,
            )
            continue
        fields = {k: rx.findall(body) for k, rx in _field_res(prefix).items()}
        ok = (
            body.count(b"IntervalReading") == 2 * n
            and all(len(fields[k]) == n for k in ("start", "duration", "value"))
            and all(len(fields[k]) in (0, n) for k in ("cost", "quality"))
            and b"&" not in body
            and body.count(b"</" + prefix + b"IntervalReading>") == n
        )
        if not ok:
            from defusedxml import DefusedXmlException
            from defusedxml import ElementTree as DefusedET

            try:
                el = DefusedET.fromstring(
                    b"<w " + feed.ns + b">" + entry + b"</w>", forbid_dtd=True
                )
            except (DefusedXmlException, SyntaxError) as exc:
                raise DataError(f"{feed.path}: malformed IntervalBlock: {exc}") from exc
            _blocks_slow(feed, entry, el, _links(entry))
            return
        mr.add(fields, n)


def parse_feed(path: Path) -> _Feed:
    """Stream a Green Button feed into per-MeterReading arrays plus its metadata."""
    check_not_empty(path)
    feed = _Feed(path)
    try:
        for entry in _iter_entries(path, feed):
            head = entry[:4096]
            if b"IntervalBlock" in head and b"IntervalReading" in entry:
                _blocks_fast(feed, entry)
            else:
                _parse_meta(feed, entry)
    except DataError as exc:
        if str(path) in str(exc):
            raise
        raise DataError(f"{path}: {exc}") from exc
    return feed


def _reading_type_for(feed: _Feed, mr_key: str, unit: str | None) -> dict:
    rt_key = feed.mr_reading_type.get(mr_key)
    if rt_key is None and not feed.mr_reading_type and len(feed.reading_types) == 1:
        rt_key = next(iter(feed.reading_types))
    rt = dict(feed.reading_types.get(rt_key, {})) if rt_key else {}
    if "uom" not in rt:
        if unit is None:
            raise DataError(
                f"{feed.path}: no ReadingType with a unit (uom) for {mr_key}; "
                "pass --unit (Wh, kWh, W, therm, m3) to say what the values are"
            )
        u = unit.lower()
        if u not in UNIT_NAMES:
            raise DataError(
                f"{feed.path}: unknown --unit {unit!r}; use one of {sorted(UNIT_NAMES)}"
            )
        rt.setdefault("powerOfTenMultiplier", UNIT_POWER[u])
        rt["uom"] = UNIT_NAMES[u]
    if rt["uom"] not in UOM:
        raise DataError(
            f"{feed.path}: unsupported unit of measure uom={rt['uom']} in ReadingType {rt_key} "
            f"(supported: {sorted(UOM)})"
        )
    rt["_key"] = rt_key or ""
    return rt


def _service(feed: _Feed, up: str, rt: dict) -> str:
    sk = feed.usage_points.get(up, {}).get("service")
    if sk is not None:
        if sk not in SERVICE:
            raise DataError(
                f"{feed.path}: UsagePoint {up} has service kind {sk}, "
                "only electric (0), gas (1) and water (2) are supported"
            )
        return SERVICE[sk]
    unit = UOM[rt["uom"]][0]
    if unit == "kWh":
        return "electric"
    if unit == "therm" or rt.get("commodity") in (7, 8):
        return "gas"
    return "water"


def import_greenbutton(
    paths: list[Path],
    dataset_dir: Path,
    *,
    unit: str | None = None,
    local_times: bool = False,
    report: ImportReport | None = None,
) -> ImportReport:
    """Import Green Button feeds into meters, customers, interval_reads and the raw side tables."""
    from features.ingest.common import file_hash
    from features.quality import check_interval_reads

    report = report or ImportReport("greenbutton", dataset_dir)
    for path in paths:
        feed = parse_feed(path)
        tag = file_hash(path)
        if not feed.meter_readings:
            raise DataError(f"{path}: no IntervalBlock readings in this feed")
        meters, reads, raws, rts = [], [], [], []
        nonexistent = []
        for mr_key, mr in feed.meter_readings.items():
            rt = _reading_type_for(feed, mr_key, unit)
            meter_id = "gb:" + mr.usage_point
            service = _service(feed, mr.usage_point, rt)
            ltp_key = feed.up_ltp.get(mr.usage_point) or next(iter(feed.local_times), None)
            lt = feed.local_times.get(ltp_key, LocalTime()) if ltp_key else LocalTime()
            start = mr.column("start").to_numpy()
            duration = mr.column("duration").to_numpy(zero_copy_only=False)
            value = mr.column("value")
            if local_times:
                utc, bad = local_to_utc(start, lt)
            else:
                utc, bad = start, np.zeros(start.size, dtype=bool)
            canon_unit, factor, is_power = UOM[rt["uom"]]
            scale = 10.0 ** rt.get("powerOfTenMultiplier", 0) * factor
            energy = value.to_numpy(zero_copy_only=False).astype(np.float64) * scale
            if is_power:
                energy = energy * duration / 3600.0
            ts = pa.array(utc * 1_000_000, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
            reverse = rt.get("flowDirection") == FLOW_REVERSE
            quality = (
                mr.column("quality").cast(pa.int16())
                if mr.has_quality
                else pa.nulls(mr.n, pa.int16())
            )
            t = pa.table(
                {
                    "meter_id": pa.array([meter_id] * mr.n, pa.string()),
                    "ts": ts,
                    "kwh": pa.array(energy, pa.float64())
                    if not reverse
                    else pa.nulls(mr.n, pa.float64()),
                    "kwh_export": pa.array(energy) if reverse else pa.nulls(mr.n, pa.float64()),
                    "quality": quality,
                }
            )
            if bad.any():
                nonexistent.append(t.filter(pa.array(bad)))
                t = t.filter(pa.array(~bad))
            reads.append(t)
            raws.append(
                pa.table(
                    {
                        "meter_reading": pa.array([mr_key] * mr.n, pa.string()),
                        "meter_id": pa.array([meter_id] * mr.n, pa.string()),
                        "start": pa.array(start, pa.int64()),
                        "duration": pa.array(duration, pa.int64()),
                        "value": value,
                        "cost": mr.column("cost") if mr.has_cost else pa.nulls(mr.n, pa.int64()),
                        "quality": quality,
                    }
                )
            )
            minutes = int(np.median(duration)) // 60 if duration.size else 60
            rts.append(
                {
                    "meter_reading": mr_key,
                    "meter_id": meter_id,
                    "reading_type": rt["_key"],
                    "service_kind": service,
                    "uom": rt["uom"],
                    "power_of_ten": rt.get("powerOfTenMultiplier", 0),
                    **{
                        k: rt.get(k)
                        for k in (
                            "flowDirection",
                            "commodity",
                            "kind",
                            "currency",
                            "accumulationBehaviour",
                            "dataQualifier",
                            "phase",
                            "timeAttribute",
                            "intervalLength",
                        )
                    },
                    "tz_offset": lt.tz_offset,
                    "dst_offset": lt.dst_offset,
                    "dst_start_rule": lt.dst_start_rule,
                    "dst_end_rule": lt.dst_end_rule,
                    "local_times": local_times,
                }
            )
            cust = re.search(r"RetailCustomer/[^/]+", mr.usage_point)
            meters.append(
                {
                    "meter_id": meter_id,
                    "customer_id": "gb:" + cust.group(0) if cust else None,
                    "service_kind": service,
                    "interval_minutes": max(minutes, 1),
                    "unit": canon_unit,
                    "timezone": iana_zone(lt),
                    "installed_at": ts[int(np.argmin(utc))].as_py() if mr.n else None,
                }
            )
        read_table_ = _merge_directions(pa.concat_tables(reads))
        meters_t = pa.Table.from_pylist(_dedupe_meters(meters))
        source = str(path)
        customers = [m["customer_id"] for m in meters if m["customer_id"]]
        if customers:
            load_table(
                dataset_dir,
                "customers",
                pa.table(
                    {
                        "customer_id": sorted(set(customers)),
                        "source": ["greenbutton"] * len(set(customers)),
                    }
                ),
                source=source,
                tag=tag,
                report=report,
            )
        load_table(dataset_dir, "meters", meters_t, source=source, tag=tag, report=report)
        res = check_interval_reads(read_table_, meters_t)
        if nonexistent:
            extra = pa.concat_tables(nonexistent)
            from features.schema import INTERVAL_READS
            from features.tables import conform

            extra = conform(INTERVAL_READS, extra).append_column(
                "reason", pa.array(["nonexistent local time (DST gap)"] * extra.num_rows)
            )
            res.rejected = (
                pa.concat_tables([res.rejected, extra]) if res.rejected.num_rows else extra
            )
            res.reasons["nonexistent local time (DST gap)"] += extra.num_rows
        notes = Counter(res.notes)
        if feed.summaries:
            notes["usage summaries (not imported)"] += feed.summaries
        load_table(
            dataset_dir,
            "interval_reads",
            read_table_,
            source=source,
            tag=tag,
            report=report,
            result=res,
            notes=notes,
        )
        write_side_table(dataset_dir, "greenbutton_raw", pa.concat_tables(raws), tag)
        write_side_table(dataset_dir, "greenbutton_reading_types", pa.Table.from_pylist(rts), tag)
        report.files.append(source)
    return report


def _dedupe_meters(meters: list[dict]) -> list[dict]:
    """One meter row per usage point (several MeterReadings share it)."""
    out: dict[str, dict] = {}
    for m in meters:
        out.setdefault(m["meter_id"], m)
    return list(out.values())


def _merge_directions(t: pa.Table) -> pa.Table:
    """Put delivered and received readings of the same meter and ts on one row."""
    if t.column("kwh_export").null_count == t.num_rows:
        return t
    fwd = t.filter(pc.is_valid(t.column("kwh")))
    rev = t.filter(pc.is_null(t.column("kwh"))).select(["meter_id", "ts", "kwh_export"])
    return fwd.drop_columns(["kwh_export"]).join(rev, ["meter_id", "ts"], join_type="full outer")


# ------------------------------------------------------------------------------- export


def export_greenbutton(dataset_dir: Path, out: Path, meter_ids: list[str] | None = None) -> int:
    """Write an ESPI feed from a dataset; returns the number of readings written.

    With ``greenbutton_raw`` present (data that came from Green Button), the original integer
    values, multipliers, units, costs and quality codes are written back, so import → export →
    import yields identical readings. Otherwise canonical ``interval_reads`` are written as Wh
    with powerOfTenMultiplier -3 (exact for kWh with up to 6 decimals).
    """
    import pyarrow.dataset as pads

    raw_dir, rt_dir = dataset_dir / "greenbutton_raw", dataset_dir / "greenbutton_reading_types"
    if raw_dir.exists() and rt_dir.exists():
        raw = pads.dataset(raw_dir).to_table()
        rts = pads.dataset(rt_dir).to_table()
    else:
        raw, rts = _raw_from_canonical(dataset_dir)
    if meter_ids:
        keep = pa.array(meter_ids, pa.string())
        raw = raw.filter(pc.is_in(raw.column("meter_id"), value_set=keep))
        rts = rts.filter(pc.is_in(rts.column("meter_id"), value_set=keep))
    if raw.num_rows == 0:
        raise DataError(f"{dataset_dir}: no readings to export")
    raw = raw.sort_by([("meter_reading", "ascending"), ("start", "ascending")])
    base = "https://wattwise.invalid/espi/1_1/resource/"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<feed xmlns="{ATOM_NS}" xmlns:espi="{ESPI_NS}">\n'
            "<id>urn:uuid:wattwise-export</id><title>wattwise Green Button export</title>\n"
        )
        seen_up: set[str] = set()
        for rt in rts.to_pylist():
            up = _up_path(rt["meter_id"])
            mr = rt["meter_reading"]
            ltp = f"LocalTimeParameters/{abs(hash(up)) % 10**8}"
            if up not in seen_up:
                seen_up.add(up)
                kind = {v: k for k, v in SERVICE.items()}[rt["service_kind"]]
                f.write(
                    _entry(
                        base + up,
                        f"<espi:UsagePoint><espi:ServiceCategory><espi:kind>{kind}"
                        "</espi:kind></espi:ServiceCategory></espi:UsagePoint>",
                        related=[base + ltp],
                    )
                )
                f.write(
                    _entry(
                        base + ltp,
                        "<espi:LocalTimeParameters>"
                        f"<espi:dstEndRule>{rt['dst_end_rule']:08X}</espi:dstEndRule>"
                        f"<espi:dstOffset>{rt['dst_offset']}</espi:dstOffset>"
                        f"<espi:dstStartRule>{rt['dst_start_rule']:08X}</espi:dstStartRule>"
                        f"<espi:tzOffset>{rt['tz_offset']}</espi:tzOffset>"
                        "</espi:LocalTimeParameters>",
                    )
                )
            rt_key = f"ReadingType/{mr.replace('/', '_')}"
            f.write(_entry(base + mr, "<espi:MeterReading/>", related=[base + rt_key]))
            fields = (
                "".join(
                    f"<espi:{k}>{rt[k]}</espi:{k}>"
                    for k in (
                        "accumulationBehaviour",
                        "commodity",
                        "currency",
                        "dataQualifier",
                        "flowDirection",
                        "intervalLength",
                        "kind",
                        "phase",
                    )
                    if rt.get(k) is not None
                )
                + f"<espi:powerOfTenMultiplier>{rt['power_of_ten']}</espi:powerOfTenMultiplier>"
            )
            if rt.get("timeAttribute") is not None:
                fields += f"<espi:timeAttribute>{rt['timeAttribute']}</espi:timeAttribute>"
            fields += f"<espi:uom>{rt['uom']}</espi:uom>"
            f.write(_entry(base + rt_key, f"<espi:ReadingType>{fields}</espi:ReadingType>"))
            sub = raw.filter(pc.equal(raw.column("meter_reading"), mr))
            for block in _blocks_xml(sub):
                f.write(_entry(base + mr + "/IntervalBlock", block, rel="up"))
        f.write("</feed>\n")
    return raw.num_rows


def _up_path(meter_id: str) -> str:
    """UsagePoint resource path of a meter (Green Button ids keep theirs)."""
    if meter_id.startswith("gb:"):
        return meter_id[3:]
    return f"Subscription/1/UsagePoint/{meter_id}"


def _entry(href: str, content: str, related: list[str] | None = None, rel: str = "self") -> str:
    links = f'<link rel="{rel}" href="{href}"/>' + "".join(
        f'<link rel="related" href="{h}"/>' for h in related or []
    )
    return f"<entry>{links}<content>{content}</content></entry>\n"


def _blocks_xml(raw: pa.Table) -> list[str]:
    """One IntervalBlock per UTC day, built with Arrow string kernels (no loop over readings)."""
    s = lambda name: raw.column(name).cast(pa.string())  # noqa: E731
    parts = []
    if raw.column("cost").null_count < raw.num_rows:
        parts.append(pc.binary_join_element_wise("<espi:cost>", s("cost"), "</espi:cost>", ""))
    if raw.column("quality").null_count < raw.num_rows:
        parts.append(
            pc.binary_join_element_wise(
                "<espi:ReadingQuality><espi:quality>",
                s("quality"),
                "</espi:quality></espi:ReadingQuality>",
                "",
            )
        )
    parts.append(
        pc.binary_join_element_wise(
            "<espi:timePeriod><espi:duration>",
            s("duration"),
            "</espi:duration><espi:start>",
            s("start"),
            "</espi:start></espi:timePeriod><espi:value>",
            s("value"),
            "</espi:value>",
            "",
        )
    )
    readings = pc.binary_join_element_wise(
        "<espi:IntervalReading>",
        *[pc.fill_null(p, "") for p in parts],
        "</espi:IntervalReading>",
        "",
    )
    day = pc.divide(raw.column("start"), 86400).to_numpy(zero_copy_only=False)
    cuts = np.flatnonzero(np.r_[True, day[1:] != day[:-1], True])
    lists = pa.ListArray.from_arrays(
        pa.array(cuts, pa.int32()),
        readings.combine_chunks() if isinstance(readings, pa.ChunkedArray) else readings,
    )
    body = pc.binary_join(lists, "\n")
    start = raw.column("start").to_numpy()
    dur = raw.column("duration").to_numpy()
    b0, b1 = start[cuts[:-1]], start[cuts[1:] - 1] + dur[cuts[1:] - 1]
    head = pc.binary_join_element_wise(
        "<espi:IntervalBlock><espi:interval><espi:duration>",
        pa.array(b1 - b0).cast(pa.string()),
        "</espi:duration><espi:start>",
        pa.array(b0).cast(pa.string()),
        "</espi:start></espi:interval>\n",
        "",
    )
    return pc.binary_join_element_wise(head, body, "\n</espi:IntervalBlock>", "").to_pylist()


def _raw_from_canonical(dataset_dir: Path) -> tuple[pa.Table, pa.Table]:
    from features.tables import read_table

    reads = read_table(dataset_dir, "interval_reads")
    meters = read_table(dataset_dir, "meters")
    unit_uom = {"kWh": 72, "therm": 169, "m3": 42}
    secs = pc.divide(pc.cast(reads.column("ts"), pa.int64()), 1_000_000)
    mlookup = pc.index_in(reads.column("meter_id"), value_set=meters.column("meter_id"))
    minutes = pc.take(meters.column("interval_minutes"), mlookup).cast(pa.int64())
    units = pc.take(meters.column("unit"), mlookup)
    kwh = reads.column("kwh").cast(pa.float64())
    # kWh (and therm/m3) to the exported integer: Wh*1000 for kWh, 1e-6 units otherwise
    mult = pc.if_else(pc.equal(units, "kWh"), 1e6, 1e6)
    value = pc.cast(pc.round(pc.multiply(kwh, mult)), pa.int64())
    raw = pa.table(
        {
            "meter_reading": pc.binary_join_element_wise(
                "Subscription/1/UsagePoint/", reads.column("meter_id"), "/MeterReading/1", ""
            ),
            "meter_id": reads.column("meter_id"),
            "start": secs,
            "duration": pc.multiply(minutes, 60),
            "value": value,
            "cost": pa.nulls(reads.num_rows, pa.int64()),
            "quality": reads.column("quality"),
        }
    )
    rts = []
    for m in meters.to_pylist():
        uom = unit_uom.get(m["unit"] or "kWh", 72)
        rts.append(
            {
                "meter_reading": _up_path(m["meter_id"]) + "/MeterReading/1",
                "meter_id": m["meter_id"],
                "service_kind": m["service_kind"],
                "uom": uom,
                "power_of_ten": -3 if uom == 72 else -6,
                "flowDirection": 1,
                "intervalLength": m["interval_minutes"] * 60,
                "kind": 12,
                "tz_offset": 0,
                "dst_offset": 0,
                "dst_start_rule": 0xFFFFFFFF,
                "dst_end_rule": 0xFFFFFFFF,
            }
        )
    return raw, pa.Table.from_pylist(rts)
