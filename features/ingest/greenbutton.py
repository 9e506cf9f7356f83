"""Green Button (NAESB ESPI) import and export.

Parsing streams the file in chunks and never builds the whole tree:

* the prolog is checked first: a DTD (``<!DOCTYPE``/``<!ENTITY``) anywhere is refused, so no
  entity can be expanded or fetched (billion laughs, external entities); with no DTD, any
  entity reference other than the five XML ones is an error;
* the feed is split into Atom ``<entry>`` elements (never nested) with ``bytes.find``.
  Metadata entries (UsagePoint, MeterReading, ReadingType, LocalTimeParameters,
  UsageSummary) are parsed with ``defusedxml`` (DTDs and entities forbidden);
* IntervalBlock bodies, which hold nearly every byte of a large file, are queued per
  MeterReading and lexed a few MB at a time (:func:`_lex_readings`): the text without digits
  and whitespace must be one ESPI IntervalReading layout repeated, and the digits, parsed by
  numpy in one call, must fill exactly its fields; no Python object is made per reading.
  Anything else (comments, entities, unusual element order, empty fields...) goes to the
  per-block regular expressions, then to ``defusedxml``, which report errors as before;
* files of 8 MB or more are parsed in two halves by two processes (split at an ``<entry>``,
  merged in file order).

Memory is bounded by the readings (arrays, ~200 bytes per reading at the peak of the
import), not by the file text. Values are ``value × 10^powerOfTenMultiplier`` in the
ReadingType's ``uom`` and normalised to kWh (electric), therm (gas) or m3 (water and gas in
volume). The original integers are kept in side tables ``greenbutton_raw`` (one row per
reading, streamed to its file meter reading by meter reading) and
``greenbutton_reading_types`` (one row per MeterReading), from which
:func:`export_greenbutton` rebuilds the feed exactly.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.ingest.common import (
    ImportReport,
    SideTableWriter,
    check_not_empty,
    file_hash,
    load_table,
    write_side_table,
)
from features.ingest.espi_time import LocalTime, iana_zone, local_to_utc
from wattwise.errors import DataError

log = logging.getLogger(__name__)

ESPI_NS = "http://naesb.org/espi"
ATOM_NS = "http://www.w3.org/2005/Atom"
CHUNK = 1 << 24
LEX_BATCH = 1 << 22  # bytes of IntervalBlock text lexed at once per MeterReading
PARALLEL_MIN = 1 << 23  # files this large are parsed in two processes
SPLIT_AT = 0.62  # the worker also hashes the file (~0.3 of a parse): give it less to parse

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
    # IntervalBlock bodies waiting for the batched lexer (and their entries, for the fallback)
    prefix: bytes = b""
    pending: list[memoryview] = field(default_factory=list)
    pending_entries: list[memoryview] = field(default_factory=list)
    pending_bytes: int = 0

    def add(self, fields: Mapping[str, list[bytes] | None], n: int) -> None:
        """Readings as lists of integer texts (the regex and defusedxml paths)."""
        for name in ("start", "duration", "value", "cost", "quality"):
            vals = fields.get(name)
            if name in ("cost", "quality"):
                if vals:
                    self.has_cost |= name == "cost"
                    self.has_quality |= name == "quality"
                if vals is None or len(vals) == 0:
                    vals = [b""] * n  # empty means null, converted below
            self.buf.setdefault(name, []).extend(vals or [])
        self.n_buf += n
        self.n += n
        if self.n_buf >= 262_144:
            self.flush()

    def add_arrays(self, cols: dict[str, np.ndarray], n: int) -> None:
        """Readings already lexed into int64 arrays (the batched fast path)."""
        self.flush()  # keep reading order with anything buffered as text
        for name in _FIELDS:
            vals = cols.get(name)
            if name == "cost" and vals is not None:
                self.has_cost = True
            if name == "quality" and vals is not None:
                self.has_quality = True
            arr = pa.array(vals, pa.int64()) if vals is not None else pa.nulls(n, pa.int64())
            self.chunks.setdefault(name, []).append(arr)
        self.n += n

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

    def column(self, name: str) -> pa.ChunkedArray:
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
    pending_bytes: int = 0
    heads: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    content_hash: str | None = None


@lru_cache(maxsize=4096)
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


@dataclass(frozen=True)
class _Prolog:
    """What the start of a feed tells: root prefix, namespace declarations, where entries start."""

    prefix: bytes
    ns: bytes
    body_start: int


class _SplitMismatchError(Exception):
    """A parallel split point fell inside an entry: parse the file in one piece instead."""


def _check_dtd(path: Path, chunk: bytes) -> None:
    # "!" is rare in feeds and found by memchr; "<!" alone is slow to scan for ("<" is not)
    if b"!" in chunk and b"<!" in chunk and _DTD.search(chunk):
        raise DataError(f"{path}: XML with a DTD or entity declarations is refused (unsafe)")


def _read_prolog(path: Path) -> _Prolog:
    """Check the prolog (not empty, no DTD, root ``<feed>``) and find the root element."""
    with open(path, "rb") as f:
        buf = f.read(CHUNK)
    if not buf.strip():
        raise DataError(f"{path}: file is empty")
    bom = 3 if buf.startswith(b"\xef\xbb\xbf") else 0
    buf = buf[bom:]
    _check_dtd(path, buf)
    pos = 0
    while True:  # skip declaration, PIs and comments to the root element
        m = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->)", re.S).match(buf, pos)
        if not m:
            break
        pos = m.end()
    root = _ROOT.match(buf, pos) if buf[pos : pos + 4096].lstrip()[:1] == b"<" else None
    if root is None:
        root = _ROOT.search(buf, pos)
    if root is None or not buf[pos : root.start()].strip() == b"":
        raise DataError(f"{path}: not XML (no root element found): is this a Green Button file?")
    prefix, name = root.group(1), root.group(2)
    if name != b"feed":
        raise DataError(
            f"{path}: root element is <{name.decode()}>, not an Atom <feed>: "
            "not a Green Button file"
        )
    ns = b" ".join(b"xmlns" + (p or b"") + b"=" + v for p, v in _NSDECL.findall(root.group(3)))
    return _Prolog(prefix, ns, bom + root.end())


def _iter_entries(path: Path, prolog: _Prolog, begin: int, stop: int | None):  # noqa: ANN202
    """Yield ``(buffer, start, end)`` of each ``<entry>`` starting in file bytes [begin, stop).

    No copy of the entry is made. Every chunk read is checked for a DTD. The last range
    (``stop`` None) checks truncation; an entry that crosses ``stop`` means the split point
    was not an entry boundary (:class:`_SplitMismatchError`).
    """
    prefix = prolog.prefix
    open_tag, close_tag = b"<" + prefix + b"entry", b"</" + prefix + b"entry"
    feed_close = re.compile(rb"</" + re.escape(prefix) + rb"feed\s*>")
    with open(path, "rb") as f:
        f.seek(begin)
        left = None if stop is None else stop - begin

        def read() -> bytes:
            nonlocal left
            n = CHUNK if left is None else min(CHUNK, left)
            data = f.read(n) if n > 0 else b""
            if left is not None:
                left -= len(data)
            _check_dtd(path, data)
            return data

        buf = read()
        pos = 0
        eof = not buf
        while True:
            start = _find_tag(buf, open_tag, pos, closing=False)
            end = _find_tag(buf, close_tag, start + 1, closing=True) if start >= 0 else -1
            if end >= 0:
                yield buf, start, end
                pos = end
                continue
            if eof:
                if start >= 0:
                    if stop is not None:
                        raise _SplitMismatchError
                    raise DataError(f"{path}: truncated XML (an <entry> is not closed)")
                if stop is None and not feed_close.search(buf, pos):
                    raise DataError(f"{path}: truncated XML (no closing </feed>)")
                return
            keep = start if start >= 0 else max(pos, len(buf) - 64)
            more = read()
            _check_dtd(path, buf[-16:] + more[:16])  # a declaration across the chunk border
            eof = not more
            buf = buf[keep:] + more
            pos = 0


_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_SPACE = frozenset(b" \t\r\n")


def _find_tag(buf: bytes, tag: bytes, pos: int, *, closing: bool) -> int:
    """Start of ``<tag`` + non-name char (or, ``closing``, end of ``</tag`` + ``\\s*>``); else -1.

    ``bytes.find`` is several times faster than a regular expression over megabytes.
    """
    n = len(buf)
    while True:
        i = buf.find(tag, pos)
        if i < 0:
            return -1
        j = i + len(tag)
        if not closing:
            if j >= n or buf[j] not in _NAME_CHARS:
                return i
        else:
            while j < n and buf[j] in _SPACE:
                j += 1
            if j < n and buf[j] == 0x3E:  # ">"
                return j + 1
        pos = i + 1


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
        key = _key(self_href, "MeterReading") or ""
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
        rows: dict[str, list[bytes]] = {k: [] for k in _FIELDS}
        readings = [r for r in block.iter() if _local(r.tag) == "IntervalReading"]
        for r in readings:
            tp = next((c for c in r if _local(c.tag) == "timePeriod"), None)
            if tp is None or _text(tp, "start") is None or _text(r, "value") is None:
                raise DataError(f"{feed.path}: an IntervalReading lacks timePeriod or value")
            rows["start"].append(str(_text(tp, "start")).encode())
            rows["duration"].append((_text(tp, "duration") or "").encode())
            value = next((c for c in r if _local(c.tag) == "value"), None)
            rows["value"].append(((value.text if value is not None else None) or "").encode())
            rows["cost"].append((_text(r, "cost") or "").encode())
            rows["quality"].append((_text(r, "quality") or "").encode())
        mr.add(rows, len(readings))


def _blocks_fast(feed: _Feed, buf: bytes, start: int, end: int) -> None:
    """Queue the IntervalBlock bodies of one entry for the batched lexer (the hot path).

    Consecutive blocks of one MeterReading are lexed together by :func:`_lex_readings`; an
    entry whose layout is unusual goes to the per-block regex path (:func:`_blocks_regex`).
    Bodies are memoryviews of the read buffer: the text is copied once, when joined.
    """
    pm = _READING_PREFIX.search(buf, start, end)
    prefix = (pm.group(1) or b"") if pm else b""
    open_tag = b"<" + prefix + b"IntervalReading>"
    first = buf.find(open_tag, start, end)
    cut = buf.find(b"content", start, first if first >= 0 else end)
    head = buf[start : cut if cut > 0 else end]
    known = feed.heads.get(head)  # the links: shared by the entries of a MeterReading
    if known is None:
        known = _reading_key(feed, _links(head))
        if len(feed.heads) < 10_000:
            feed.heads[head] = known
    mr_key, up = known
    one_block_head = first > cut > 0 and buf.count(b"IntervalBlock", cut, first) == 1
    mr = feed.meter_readings.get(mr_key)
    if mr is None:
        mr = feed.meter_readings[mr_key] = _MeterReading(mr_key, up)
    if mr.pending and prefix != mr.prefix:
        _flush_pending(feed, mr)
    close_block = b"</" + prefix + b"IntervalBlock>"
    view = memoryview(buf)
    last = buf.rfind(close_block, first, end) if first >= 0 else -1
    if one_block_head and last > first:
        # the usual one block per entry: [first reading, block end) without scanning for
        # more blocks; a second block inside it breaks the lexer's layout check and is then
        # split block by block (see _flush_pending)
        bodies = [view[first:last]]
    else:
        bodies = []
        pos = start
        while (stop := buf.find(close_block, pos, end)) >= 0:
            first = buf.find(open_tag, pos, stop)
            if first >= 0:
                bodies.append(view[first:stop])
            elif buf.find(b"IntervalReading", pos, stop) >= 0:  # e.g. attributes on the tag
                _flush_pending(feed, mr)
                _blocks_regex(feed, buf[start:end])
                return
            pos = stop + len(close_block)
    if not bodies:
        return
    mr.prefix = prefix
    mr.pending += bodies
    mr.pending_entries.append(view[start:end])
    size = sum(len(b) for b in bodies)
    mr.pending_bytes += size
    feed.pending_bytes += size
    if mr.pending_bytes >= LEX_BATCH:
        _flush_pending(feed, mr)
    elif feed.pending_bytes >= 4 * LEX_BATCH:  # many meter readings interleaved: bound memory
        for other in feed.meter_readings.values():
            _flush_pending(feed, other)


def _flush_pending(feed: _Feed, mr: _MeterReading) -> None:
    """Lex the queued bodies of ``mr`` at once; fall back entry by entry if they are unusual."""
    if not mr.pending:
        return
    bodies, entries = mr.pending, mr.pending_entries
    feed.pending_bytes -= mr.pending_bytes
    mr.pending, mr.pending_entries, mr.pending_bytes = [], [], 0
    text = b"".join(bodies)
    lexed = _lex_readings(text, mr.prefix)
    if lexed is None and len(entries) > 1:  # lex entry by entry, then block by block
        for entry in entries:
            _lex_entry(feed, mr, bytes(entry))
    elif lexed is None:
        _lex_entry(feed, mr, bytes(entries[0]))
    else:
        mr.add_arrays(*lexed)


def _lex_entry(feed: _Feed, mr: _MeterReading, entry: bytes) -> None:
    """One entry's blocks, split at every block end, lexed; else the per-block regex path."""
    prefix = mr.prefix
    open_tag = b"<" + prefix + b"IntervalReading>"
    bodies = []
    for block in entry.split(b"</" + prefix + b"IntervalBlock>")[:-1]:
        first = block.find(open_tag)
        if first >= 0:
            bodies.append(block[first:])
        elif b"IntervalReading" in block:
            bodies = []
            break
    lexed = _lex_readings(b"".join(bodies), prefix) if bodies else None
    if lexed is None:
        _blocks_regex(feed, entry)
    else:
        mr.add_arrays(*lexed)


_DIGITS = b"0123456789-"
_WS = b" \t\r\n"
_SKELETON_DELETE = _DIGITS + _WS
# numbers text: digits and '-' kept, whitespace and tag brackets become separators, the rest
# (tag names, attributes) is deleted: ~1/5 of the XML is left for numpy's parser
_NUMS_DELETE = bytes(c for c in range(256) if c not in _DIGITS + _WS + b"<>")
_NUMS_MAP = bytes(c if c in _DIGITS else 0x20 for c in range(256))


@lru_cache(maxsize=16)
def _shapes(p: bytes) -> dict[bytes, tuple[str, ...]]:
    """Skeletons (digits, whitespace deleted) of the IntervalReading layouts of the ESPI schema.

    Element order is fixed by the schema: cost, ReadingQuality/quality, timePeriod (duration,
    start), value; cost and quality are optional.
    """

    def el(name: str) -> bytes:
        return b"<" + p + name.encode() + b"></" + p + name.encode() + b">"

    out = {}
    for cost in (False, True):
        for quality in (False, True):
            skel = b"<" + p + b"IntervalReading>"
            fields: tuple[str, ...] = ()
            if cost:
                skel += el("cost")
                fields += ("cost",)
            if quality:
                skel += b"<" + p + b"ReadingQuality>" + el("quality")
                skel += b"</" + p + b"ReadingQuality>"
                fields += ("quality",)
            skel += b"<" + p + b"timePeriod>" + el("duration") + el("start")
            skel += b"</" + p + b"timePeriod>" + el("value") + b"</" + p + b"IntervalReading>"
            out[skel] = (*fields, "duration", "start", "value")
    return out


def _tiled(text: bytes, unit: bytes, m: int) -> bool:
    """Whether ``text`` is ``unit`` repeated ``m`` times (memcmp of 1024-unit blocks)."""
    block = unit * min(m, 1024)
    full = len(text) // len(block) * len(block)
    rest = (len(text) - full) // len(unit)
    return all(text.startswith(block, i) for i in range(0, full, len(block))) and (
        text.startswith(unit * rest, full)
    )


def _lex_readings(text: bytes, prefix: bytes) -> tuple[dict[str, np.ndarray], int] | None:
    """IntervalReadings of the usual shape as int64 arrays, or None for anything else.

    ``text`` holds consecutive readings (and whitespace) only. It is accepted when the skeleton
    (text without digits, '-' and whitespace) is exactly one schema layout repeated m times
    and the numbers parse to exactly m x (fields per reading) integers, so every number sits
    in its field. Empty or non-integer fields, comments, entities, CDATA, extra elements or
    attributes break one of these and send the text to the per-block regex path. Two bytes
    passes and one numpy parse: no Python object per reading.
    """
    if any(c in _DIGITS for c in prefix):
        text = text.replace(b"<" + prefix, b"<").replace(b"</" + prefix, b"</")
        prefix = b""
    skel = text.translate(None, _SKELETON_DELETE)
    p = prefix.translate(None, _SKELETON_DELETE)
    close = b"</" + p + b"IntervalReading>"
    end = skel.find(close)
    if end < 0:
        return None
    unit = skel[: end + len(close)]
    fields = _shapes(p).get(unit)
    if fields is None:
        return None
    m = len(skel) // len(unit)
    if len(skel) != m * len(unit) or not _tiled(skel, unit, m):
        return None
    nums_text = text.translate(_NUMS_MAP, _NUMS_DELETE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            nums = np.fromstring(nums_text, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    k = len(fields)
    if nums.size != m * k:
        return None
    cols = nums.reshape(m, k)
    return {name: np.ascontiguousarray(cols[:, i]) for i, name in enumerate(fields)}, m


def _blocks_regex(feed: _Feed, entry: bytes) -> None:
    """Lex the IntervalBlocks of one entry with regular expressions, block by block.

    Used for entries the batched lexer does not accept (whitespace inside values, unusual
    element order, ...); blocks that break even these patterns go to ``defusedxml``.
    """
    cut = entry.find(b"content")
    links = _links(entry[: cut if cut > 0 else len(entry)])
    mr_key, up = _reading_key(feed, links)
    mr = feed.meter_readings.get(mr_key)
    if mr is None:
        mr = feed.meter_readings[mr_key] = _MeterReading(mr_key, up)
    pm = _READING_PREFIX.search(entry)
    prefix = (pm.group(1) or b"") if pm else b""
    open_tag = b"<" + prefix + b"IntervalReading>"
    parsed: list[tuple[dict, int]] = []  # added only once every block of the entry is lexed
    for block in entry.split(b"</" + prefix + b"IntervalBlock>")[:-1]:
        first = block.find(open_tag)
        if first < 0 and b"IntervalReading" not in block:
            continue
        body = block[max(first, 0) :]
        n = body.count(open_tag)
        whole = _reading_re(prefix).findall(body)
        if len(whole) == n and body.count(b"IntervalReading") == 2 * n:
            cost, quality, duration, start, value = zip(*whole, strict=True) if n else ([],) * 5
            parsed.append(
                (
                    {
                        "start": start,
                        "duration": duration,
                        "value": value,
                        "cost": cost,
                        "quality": quality,
                    },
                    n,
                )
            )
            continue
        fields = {k: rx.findall(body) for k, rx in _field_res(prefix).items()}
        ok = (
            first >= 0
            and body.count(b"IntervalReading") == 2 * n
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
        parsed.append((fields, n))
    for fields, n in parsed:
        mr.add(fields, n)


def parse_feed(path: Path, *, content_hash: bool = False) -> _Feed:
    """Stream a Green Button feed into per-MeterReading arrays plus its metadata.

    Files of :data:`PARALLEL_MIN` bytes or more are parsed in two parts at once: a forked
    worker takes the end of the file (from the first ``<entry`` after :data:`SPLIT_AT` of
    it) and, with ``content_hash``, hashes the file; this process parses the start. The parts
    are merged in file order, so the result equals a sequential parse. ``content_hash`` sets
    ``feed.content_hash`` (:func:`features.ingest.common.file_hash`), computed on a thread
    when the file is parsed in one piece.
    """
    from features.ingest.common import hash_in_background

    check_not_empty(path)
    try:
        prolog = _read_prolog(path)
        split = _split_point(path, prolog)
        if split is None:
            tag = hash_in_background(path) if content_hash else None
            feed = _parse_range(path, prolog, prolog.body_start, None)
            feed.content_hash = tag.result() if tag else None
            return feed
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            second = pool.submit(_parse_range, path, prolog, split, None, content_hash)
            try:
                first = _parse_range(path, prolog, prolog.body_start, split)
                return _merge_feeds(first, second.result())
            except (_SplitMismatchError, BrokenProcessPool):  # parse in one piece instead
                second.cancel()
                return _parse_range(path, prolog, prolog.body_start, None, content_hash)
    except DataError as exc:
        if str(path) in str(exc):
            raise
        raise DataError(f"{path}: {exc}") from exc


def _split_point(path: Path, prolog: _Prolog) -> int | None:
    """File offset of the first ``<entry`` after the middle, if a parallel parse is worth it."""
    import os

    size = path.stat().st_size
    if size < PARALLEL_MIN or (os.cpu_count() or 1) < 2 or not hasattr(os, "fork"):
        return None
    open_tag = b"<" + prolog.prefix + b"entry"
    at = int(size * SPLIT_AT)
    with open(path, "rb") as f:
        f.seek(at)
        window = f.read(1 << 22)
    i = _find_tag(window, open_tag, 0, closing=False)
    return at + i if i >= 0 else None


def _parse_range(
    path: Path, prolog: _Prolog, begin: int, stop: int | None, content_hash: bool = False
) -> _Feed:
    """Parse the entries that start in file bytes [begin, stop) (then hash the whole file)."""
    feed = _Feed(path, ns=prolog.ns)
    for buf, start, end in _iter_entries(path, prolog, begin, stop):
        head = buf[start : min(start + 4096, end)]
        if b"IntervalBlock" in head and buf.find(b"IntervalReading", start, end) >= 0:
            _blocks_fast(feed, buf, start, end)
        else:
            _parse_meta(feed, buf[start:end])
    for mr in feed.meter_readings.values():
        _flush_pending(feed, mr)
        mr.flush()
    feed.heads = {}
    if content_hash:
        from features.ingest.common import file_hash

        feed.content_hash = file_hash(path)
    return feed


def _merge_feeds(a: _Feed, b: _Feed) -> _Feed:
    """``b`` (the later part of a file) appended to ``a``, as a sequential parse would build it."""
    for key, mr in b.meter_readings.items():
        mine = a.meter_readings.get(key)
        if mine is None:
            a.meter_readings[key] = mr
            continue
        for name, chunks in mr.chunks.items():
            mine.chunks.setdefault(name, []).extend(chunks)
        mine.n += mr.n
        mine.has_cost |= mr.has_cost
        mine.has_quality |= mr.has_quality
    a.usage_points.update(b.usage_points)
    a.mr_reading_type.update(b.mr_reading_type)
    a.reading_types.update(b.reading_types)
    a.local_times.update(b.local_times)
    a.up_ltp.update(b.up_ltp)
    a.summaries += b.summaries
    a.content_hash = a.content_hash or b.content_hash
    return a


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
    report = report or ImportReport("greenbutton", dataset_dir)
    for path in paths:
        feed = parse_feed(path, content_hash=True)  # the hash overlaps with parsing
        tag = feed.content_hash or file_hash(path)
        if not feed.meter_readings:
            raise DataError(f"{path}: no IntervalBlock readings in this feed")
        with SideTableWriter(dataset_dir, "greenbutton_raw", tag) as raw_writer:
            _import_feed(feed, path, dataset_dir, tag, unit, local_times, report, raw_writer)
        report.files.append(str(path))
    return report


def _import_feed(  # noqa: PLR0913 - one feed's import, split out of import_greenbutton
    feed: _Feed,
    path: Path,
    dataset_dir: Path,
    tag: str,
    unit: str | None,
    local_times: bool,
    report: ImportReport,
    raw_writer: SideTableWriter,
) -> None:
    """Map one parsed feed onto the canonical tables; raw readings stream to the side table."""
    from features.quality import check_interval_reads

    meters, reads, rts = [], [], []
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
            mr.column("quality").cast(pa.int16()) if mr.has_quality else pa.nulls(mr.n, pa.int16())
        )
        t = pa.table(
            {
                "meter_id": _repeat(meter_id, mr.n),
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
        raw_writer.write(
            pa.table(
                {
                    "meter_reading": _repeat(mr_key, mr.n, dictionary=True),
                    "meter_id": _repeat(meter_id, mr.n, dictionary=True),
                    "start": pa.array(start, pa.int64()),
                    "duration": pa.array(duration, pa.int64()),
                    "value": value,
                    "cost": mr.column("cost") if mr.has_cost else pa.nulls(mr.n, pa.int64()),
                    "quality": quality,
                }
            )
        )
        mr.chunks = {}  # the parsed arrays are written: free them as we go
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
        res.rejected = pa.concat_tables([res.rejected, extra]) if res.rejected.num_rows else extra
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
    raw_writer.commit()
    write_side_table(dataset_dir, "greenbutton_reading_types", pa.Table.from_pylist(rts), tag)


def _repeat(text: str, n: int, *, dictionary: bool = False) -> pa.Array:
    """``n`` copies of one string (a string array, or a one-word dictionary array)."""
    codes = pa.array(np.zeros(n, dtype=np.int32))
    arr = pa.DictionaryArray.from_arrays(codes, pa.array([text], pa.string()))
    return arr if dictionary else arr.cast(pa.string())


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
