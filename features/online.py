"""A lean reader of Feast's SQLite online store for single-entity, low-latency lookups.

Feast's ``get_online_features`` spends most of a single-customer lookup building its
response (type conversions per feature and view), not reading. This reader resolves a
FeatureService once (its views, their tables and feature names, exactly as Feast stores them)
and then answers each lookup with one SQL query over those tables, decoding Feast's own
``ValueProto`` values. It reads the same store that ``wattwise features materialize`` writes;
a test checks it returns exactly what ``get_online_features`` returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

# ValueProto kinds whose Python value Feast returns as is (no timestamp, set or JSON handling)
_SCALARS = frozenset(
    {"double_val", "float_val", "int32_val", "int64_val", "bool_val", "string_val", "bytes_val"}
)
_KEY_CACHE = 1_000_000  # serialized keys kept (~60 B each)


class OnlineReader:
    """Latest feature values of one FeatureService, keyed by one entity join key."""

    def __init__(self, store: Any, service_name: str) -> None:
        from feast.infra.online_stores.sqlite import _table_id

        cfg = store.config
        fs = store.get_feature_service(service_name)
        self.features: list[str] = []
        parts: list[str] = []
        self.join_key: str | None = None
        versioning = getattr(cfg.registry, "enable_online_feature_view_versioning", False)
        for proj in fs.feature_view_projections:
            fv = store.get_feature_view(proj.name)
            keys = [c.name for c in fv.entity_columns]
            if len(keys) != 1:
                raise ValueError(
                    f"view {fv.name} has {len(keys)} join keys; the reader handles one"
                )
            if self.join_key not in (None, keys[0]):
                raise ValueError(
                    f"service {service_name} mixes join keys {self.join_key} and {keys[0]}"
                )
            self.join_key = keys[0]
            names = [f.name for f in proj.features]
            self.features += names
            table = _table_id(cfg.project, fv, versioning)
            quoted = ", ".join("'" + n.replace("'", "''") + "'" for n in names)
            parts.append(
                f'SELECT entity_key, feature_name, value FROM "{table}" '
                f"WHERE entity_key IN ({{keys}}) AND feature_name IN ({quoted})"
            )
        self._sql = " UNION ALL ".join(parts)
        self._version = cfg.entity_key_serialization_version
        self._path = cfg.online_store.path
        self._con = sqlite3.connect(self._path, check_same_thread=False)
        self._keys: dict[str, bytes] = {}

    def _serialize(self, key: str) -> bytes:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        ek = EntityKey(join_keys=[self.join_key or ""], entity_values=[Value(string_val=key)])
        return serialize_entity_key(ek, entity_key_serialization_version=self._version)

    def get(self, keys: Sequence[str]) -> dict[str, list[Any]]:
        """``{join_key: keys, feature: [value or None per key]}`` in the order of ``keys``."""
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        ser = [self._key(k) for k in keys]
        index = {s: i for i, s in enumerate(ser)}
        out: dict[str, list[Any]] = {f: [None] * len(keys) for f in self.features}
        marks = ",".join("?" * len(ser))
        sql = self._sql.replace("{keys}", marks)
        args = ser * (sql.count("IN (" + marks + ")"))
        parse = Value.FromString
        single = len(keys) == 1
        for ek, name, raw in self._con.execute(sql, args):
            v = parse(raw)
            kind = v.WhichOneof("val")
            # plain scalars decode as Feast decodes them; anything else goes through Feast
            if kind in _SCALARS:
                value = getattr(v, kind)
            elif kind is None or kind == "null_val":
                continue
            else:
                value = feast_value_type_to_python_type(v)
            out[name][0 if single else index[ek]] = value
        return {str(self.join_key): list(keys), **out}

    def _key(self, key: str) -> bytes:
        """Serialized entity key, memoised: the same customers are looked up again and again."""
        ser = self._keys.get(key)
        if ser is None:
            ser = self._serialize(key)
            if len(self._keys) >= _KEY_CACHE:
                self._keys.clear()
            self._keys[key] = ser
        return ser

    def close(self) -> None:
        self._con.close()
