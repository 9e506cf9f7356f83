"""Feast objects for the ``feast`` CLI run in this folder: wiring only.

Views are generated from the feature tables by :func:`features.store.definitions`; set
``WATTWISE_FEATURES_DIR`` to point at another dataset's ``features/`` folder. The wattwise
CLI (`wattwise features apply`) does the same without this file.
"""

import os
from pathlib import Path

from features.store import definitions

_features_dir = Path(
    os.environ.get(
        "WATTWISE_FEATURES_DIR", Path(__file__).resolve().parents[2] / "data/synthetic/features"
    )
)
globals().update({obj.name: obj for obj in definitions(_features_dir)})
