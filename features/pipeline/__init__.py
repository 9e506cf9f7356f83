"""Feature pipeline (issue 5): canonical tables -> feature tables keyed by entity and snapshot.

``build_features`` writes one parquet file per group; ``GROUPS`` describes every group and
feature (the Feast views and docs/features.md are generated from it).
"""

from __future__ import annotations

from features.pipeline.build import FeatureBuildSummary, build_features
from features.pipeline.config import FeatureConfig, load_feature_config
from features.pipeline.registry import GROUPS, GroupSpec

__all__ = [
    "GROUPS",
    "FeatureBuildSummary",
    "FeatureConfig",
    "GroupSpec",
    "build_features",
    "load_feature_config",
]
