"""Feast objects for the ``feast`` CLI run in this folder: wiring only.

Views are generated from the feature tables by :func:`features.store.definitions`; set
``WATTWISE_FEATURES_DIR`` to point at another dataset's ``features/`` folder. FeatureServices
are declared by the model kinds (``training.kinds``) and applied by ``wattwise features
apply``; this file re-declares the ones already in the registry, so that a plain ``feast
apply`` here does not drop them.
"""

import os
from pathlib import Path

from features.services import ServiceDecl
from features.store import definitions, open_store

_features_dir = Path(
    os.environ.get(
        "WATTWISE_FEATURES_DIR", Path(__file__).resolve().parents[2] / "data/synthetic/features"
    )
)
_applied = [
    ServiceDecl(s.name, tuple(p.name for p in s.feature_view_projections))
    for s in open_store(_features_dir.parent).list_feature_services()
]
globals().update({obj.name: obj for obj in definitions(_features_dir, _applied)})
