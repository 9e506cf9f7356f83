"""Evaluation plots logged with each model: ROC, PR, calibration, lift, feature importance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class _Figures:
    """``subplots`` and ``close`` like pyplot's, on bare ``Figure`` objects: no pyplot state
    and no ``matplotlib.use`` (a notebook that trains a model keeps its inline backend)."""

    @staticmethod
    def subplots(*args: Any, figsize: tuple[float, float] | None = None, **kw: Any) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(*args, **kw)

    @staticmethod
    def close(fig: Any) -> None:
        """Nothing to release: the figure is not registered with pyplot."""


def _fig() -> _Figures:
    return _Figures()


def binary_plots(
    y: np.ndarray, p: np.ndarray, importance: dict[str, float], out: Path
) -> list[Path]:
    """Write the standard plots of a probability model into ``out``; return their paths."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    from training.metrics import calibration_table

    plt = _fig()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(fpr, tpr)
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        paths.append(out / "roc.png")
        fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
        plt.close(fig)
        prec, rec, _ = precision_recall_curve(y, p)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(rec, prec)
        ax.axhline(y.mean(), ls="--", color="grey")
        ax.set(xlabel="recall", ylabel="precision", title="precision-recall")
        paths.append(out / "pr.png")
        fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
        plt.close(fig)
    cal = calibration_table(y, p)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(cal["predicted"], cal["observed"], "o-")
    hi = max(max(cal["predicted"], default=0), max(cal["observed"], default=0), 1e-3)
    ax.plot([0, hi], [0, hi], "--", color="grey")
    ax.set(xlabel="mean predicted", ylabel="observed rate", title="calibration (deciles)")
    paths.append(out / "calibration.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)
    order = np.argsort(-p, kind="stable")
    share = np.arange(1, len(y) + 1) / len(y)
    captured = np.cumsum(y[order]) / max(y.sum(), 1)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(share, captured)
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(
        xlabel="share contacted (by score)",
        ylabel="share of positives captured",
        title="cumulative gain",
    )
    paths.append(out / "lift.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)
    top = sorted(importance.items(), key=lambda kv: -kv[1])[:20][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.set(xlabel="gain", title="feature importance")
    paths.append(out / "importance.png")
    fig.savefig(paths[-1], dpi=90, bbox_inches="tight")
    plt.close(fig)
    return paths
