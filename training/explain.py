"""Per-prediction feature contributions of a LightGBM model, two ways.

``shap``: LightGBM's ``pred_contrib`` (TreeSHAP). Exact Shapley values, but it walks every
tree for every row: about 40 µs per tree per row, 5 ms for one customer of a 134-tree churn
model, more than everything else a scoring request does.

``path``: decision-path contributions (Saabas; the ``treeinterpreter`` method). Along the
path a row takes through a tree, every split moves the node value from parent to child, and
that move is credited to the split's feature. A row's contributions therefore depend only on
the leaf it reaches in each tree, so they are tabulated once per model (tree × leaf → a few
features) and a row costs one ``pred_leaf`` prediction plus a sparse sum: microseconds.
Like SHAP, they add up exactly to the raw score (bias + contributions); they differ from
SHAP in how credit is shared between interacting features. ``agreement`` measures how often
the two give the same top reasons on a model's own test rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np

ReasonMethod = Literal["path", "shap"]


@dataclass
class PathContributions:
    """Decision-path contributions of one booster, tabulated per (tree, leaf)."""

    table: Any  # scipy.sparse CSR, (trees * max_leaves) × features
    bias: float  # sum of the root values: the raw score before any split
    max_leaves: int
    trees: int

    @classmethod
    def from_booster(cls, booster: Any) -> PathContributions:
        """Tabulate every leaf's path contributions (a walk over the model, once per load)."""
        from scipy import sparse

        dump = booster.dump_model()
        info = dump["tree_info"]
        n_feat = int(dump["max_feature_idx"]) + 1
        max_leaves = max(int(t["num_leaves"]) for t in info)
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        bias = 0.0
        for t, tree in enumerate(info):
            root = tree["tree_structure"]
            if "leaf_value" in root:  # a single-leaf tree: no split, all bias
                bias += float(root["leaf_value"])
                continue
            bias += float(root["internal_value"])
            # iterative DFS: (node, {feature: contribution so far})
            stack: list[tuple[dict[str, Any], dict[int, float]]] = [(root, {})]
            while stack:
                node, acc = stack.pop()
                if "leaf_index" in node:
                    base = t * max_leaves + int(node["leaf_index"])
                    for f, v in acc.items():
                        rows.append(base)
                        cols.append(f)
                        vals.append(v)
                    continue
                f = int(node["split_feature"])
                here = float(node["internal_value"])
                for side in ("left_child", "right_child"):
                    child = node[side]
                    value = float(
                        child["leaf_value"] if "leaf_index" in child else child["internal_value"]
                    )
                    nxt = dict(acc)
                    nxt[f] = nxt.get(f, 0.0) + value - here
                    stack.append((child, nxt))
        table = sparse.csr_matrix(
            (np.asarray(vals, dtype=np.float64), (rows, cols)),
            shape=(len(info) * max_leaves, n_feat),
        )
        return cls(table, bias, max_leaves, len(info))

    @cached_property
    def dense(self) -> np.ndarray | None:
        """The table as a dense array for a few rows at a time (None when over 64 MB)."""
        rows, cols = self.table.shape
        return self.table.toarray() if rows * cols * 8 <= 64 * 2**20 else None

    def contributions(
        self, booster: Any, X: np.ndarray, threads: int = 1, leaves: np.ndarray | None = None
    ) -> np.ndarray:
        """(n, features) contributions in raw-score units; rows sum to ``raw - bias``.

        ``leaves``: the rows' leaf indices when the caller already has them (a fast one-row
        prediction); else they are predicted here."""
        from scipy import sparse

        if leaves is None:
            leaves = booster.predict(X, pred_leaf=True, num_threads=threads)
        leaves = np.asarray(leaves, dtype=np.int64)
        leaves = leaves.reshape(len(X), self.trees)
        n = len(leaves)
        idx = (leaves + np.arange(self.trees, dtype=np.int64) * self.max_leaves).ravel()
        dense = self.dense if n <= 16 else None
        if dense is not None:  # a scoring request: a gather of trees × features, no sparse setup
            return np.asarray(dense[idx].reshape(n, self.trees, -1).sum(axis=1))
        onehot = sparse.csr_matrix(
            (np.ones(idx.size), idx, np.arange(0, idx.size + 1, self.trees)),
            shape=(n, self.table.shape[0]),
        )
        return np.asarray((onehot @ self.table).toarray())


def shap_contributions(booster: Any, X: np.ndarray, threads: int = 1) -> np.ndarray:
    """(n, features) TreeSHAP values (LightGBM ``pred_contrib``, bias column dropped)."""
    return np.asarray(booster.predict(X, pred_contrib=True, num_threads=threads))[:, :-1]


def top_features(contrib: np.ndarray, k: int, names: Sequence[str]) -> list[list[str]]:
    """Per row, up to ``k`` feature names with the largest positive contribution."""
    cols = np.asarray(list(names), dtype=object)
    k = min(k, contrib.shape[1])
    if k == 0:
        return [[] for _ in range(len(contrib))]
    top = np.argsort(-contrib, axis=1)[:, :k]
    vals = np.take_along_axis(contrib, top, axis=1)
    return [
        [str(c) for c, v in zip(r, vr, strict=True) if v > 0]
        for r, vr in zip(cols[top], vals, strict=True)
    ]


def agreement(path: np.ndarray, shap: np.ndarray, k: int = 3) -> dict[str, float]:
    """How often path and SHAP contributions name the same reasons.

    ``top1``: share of rows whose first reason is the same; ``topk_overlap``: mean share of
    the SHAP top-``k`` that is also in the path top-``k``.
    """
    p = np.argsort(-path, axis=1)[:, :k]
    s = np.argsort(-shap, axis=1)[:, :k]
    overlap = (p[:, :, None] == s[:, None, :]).any(axis=2).sum(axis=1) / k
    return {"top1": float(np.mean(p[:, 0] == s[:, 0])), "topk_overlap": float(overlap.mean())}
