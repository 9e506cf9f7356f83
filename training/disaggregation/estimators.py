"""Disaggregators behind one scikit-learn-style interface.

``fit(X, Y)`` takes windows of aggregate load ``X`` of shape ``(n, T)`` and the appliance
loads ``Y`` of shape ``(n, T, A)`` (NaN = unknown, masked out); ``predict(X)`` returns
``(n, T, A)``. Windows may have any length; units are whatever the caller uses (W here).
``predict(X, times)`` takes the readings' epoch seconds (UTC) too: the networks can take
sin/cos of the time of day and of the week as extra input channels (``time_features``),
which is how they tell a pool pump on its morning timer from another 1 kW load; the other
estimators ignore them.

- :class:`MeanDisaggregator`: the mean of each appliance (the NILM "mean predictor").
- :class:`CombinatorialOptimisation`: k-means power states per appliance (plus an "other"
  pseudo-appliance for the unmodelled rest); each instant takes the combination of states
  whose sum is closest to the aggregate (Hart 1992; NILMTK's CO), by a sorted search.
- :class:`NeuralDisaggregator`: ``arch="seq2point"`` is Zhang et al. (AAAI 2018): five
  convolutions over a window of ``window`` readings, a dense layer, one output per appliance
  for the window's midpoint. It is run as a strided convolution over the whole series (the
  dense layer is a convolution whose kernel spans the rest of the window), which gives exactly
  the sliding-window outputs at a fraction of the cost. ``arch="tcn"`` is a non-causal
  dilated residual network (WaveNILM-style, Harell et al. ICASSP 2019; the temporal
  convolutional NILM networks after it) with the same interface.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from training.disaggregation.data import fill_gaps

log = logging.getLogger(__name__)
Report = Callable[[int, float], None]
ValidScore = Callable[[np.ndarray], float]


def _check_xy(X: np.ndarray, Y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, np.float32)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] == 0:
        raise ValueError(f"X must be (windows, readings), got shape {X.shape}")
    if Y is not None:
        Y = np.asarray(Y, np.float32)
        if Y.ndim == 2:
            Y = Y[None]
        if Y.shape[:2] != X.shape:
            raise ValueError(f"Y must be (windows, readings, appliances) matching X, got {Y.shape}")
    return fill_gaps(X), Y


class MeanDisaggregator(BaseEstimator):  # type: ignore[misc]
    """Every appliance at its training mean, always."""

    def __init__(self, appliances: list[str] | None = None) -> None:
        self.appliances = appliances

    def fit(self, X: np.ndarray, Y: np.ndarray, **fit_params: Any) -> MeanDisaggregator:
        _, Yc = _check_xy(X, Y)
        assert Yc is not None
        self.mean_ = np.nan_to_num(np.nanmean(Yc.reshape(-1, Yc.shape[-1]), axis=0))
        return self

    def predict(self, X: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """``times`` is accepted (and ignored) so that every estimator predicts alike."""
        Xc, _ = _check_xy(X)
        return np.broadcast_to(self.mean_, (*Xc.shape, self.mean_.size)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mean", "appliances": self.appliances, "mean_": self.mean_.tolist()}


class CombinatorialOptimisation(BaseEstimator):  # type: ignore[misc]
    """Closest sum of appliance power states to each aggregate reading."""

    def __init__(
        self,
        appliances: list[str] | None = None,
        states: int = 3,
        other_states: int = 3,
        seed: int = 0,
    ) -> None:
        self.appliances = appliances
        self.states = states
        self.other_states = other_states
        self.seed = seed

    @staticmethod
    def _kmeans_1d(v: np.ndarray, k: int, seed: int) -> np.ndarray:
        from sklearn.cluster import KMeans

        v = v[np.isfinite(v)]
        if v.size == 0:
            return np.zeros(1, np.float32)
        rng = np.random.default_rng(seed)
        v = rng.choice(v, min(v.size, 20_000), replace=False)
        k = max(1, min(k, len(np.unique(np.round(v, 1)))))
        km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(v.reshape(-1, 1))
        c = np.sort(km.cluster_centers_.ravel())
        c[0] = min(c[0], 0.0) if c[0] < 0.05 * max(c[-1], 1e-9) else c[0]
        return np.unique(np.concatenate([[0.0], c])).astype(np.float32)

    def fit(self, X: np.ndarray, Y: np.ndarray, **fit_params: Any) -> CombinatorialOptimisation:
        Xc, Yc = _check_xy(X, Y)
        assert Yc is not None
        A = Yc.shape[-1]
        self.states_ = [
            self._kmeans_1d(Yc[..., j].ravel(), self.states, self.seed) for j in range(A)
        ]
        other = Xc - np.nan_to_num(Yc).sum(-1)
        self.states_.append(self._kmeans_1d(other.ravel(), self.other_states, self.seed))
        grids = np.meshgrid(*self.states_, indexing="ij")
        combos = np.stack([g.ravel() for g in grids], 1)  # (C, A + 1)
        order = np.argsort(combos.sum(1), kind="stable")
        self.combos_ = combos[order].astype(np.float32)
        self.totals_ = self.combos_.sum(1)
        return self

    def predict(self, X: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """``times`` is accepted (and ignored) so that every estimator predicts alike."""
        Xc, _ = _check_xy(X)
        x = Xc.ravel()
        i = np.clip(np.searchsorted(self.totals_, x), 1, len(self.totals_) - 1)
        left_closer = np.abs(x - self.totals_[i - 1]) <= np.abs(self.totals_[i] - x)
        best = np.where(left_closer, i - 1, i)
        out = self.combos_[best, :-1]
        return out.reshape(*Xc.shape, -1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "co",
            "appliances": self.appliances,
            "states_": [s.tolist() for s in self.states_],
        }


# cycles a network can take as input channels (sin and cos of the phase): pool pumps run on
# timers, water heaters and EVs follow the household's day, laundry its week (the names are
# the config's TIME_FEATURES)
TIME_CYCLES = {"day": 86_400.0, "week": 7 * 86_400.0}


def _check_times(times: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Epoch seconds ``(n, T)`` (a ``(T,)`` row is shared by all windows; datetime64 is
    converted)."""
    t = np.asarray(times)
    if np.issubdtype(t.dtype, np.datetime64):
        t = t.astype("datetime64[ns]").astype(np.int64) / 1e9
    t = np.asarray(t, np.float64)
    if t.ndim == 1 and t.shape[0] == shape[-1]:
        t = np.broadcast_to(t, shape)
    if t.shape != tuple(shape):
        raise ValueError(f"times must be (windows, readings) {tuple(shape)}, got {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("times must be finite (epoch seconds of every reading)")
    return t


def time_channels(times: np.ndarray, features: list[str] | tuple[str, ...]) -> np.ndarray:
    """``(n, T)`` epoch seconds (UTC) → ``(n, T, 2·F)`` float32: sin and cos of the phase of
    each named cycle (``day``: time of day, ``week``: time of week)."""
    out = []
    for f in features:
        period = TIME_CYCLES[f]
        ph = (2 * np.pi / period) * np.mod(times, period)
        out += [np.sin(ph), np.cos(ph)]
    return np.stack(out, axis=-1).astype(np.float32)


def _device(name: str = "auto") -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _build_net(
    arch: str, window: int, channels: int, hidden: int, n_out: int, n_in: int = 1
) -> Any:
    import torch
    from torch import nn

    class Seq2Point(nn.Module):
        """Zhang et al. 2018, with valid convolutions so each output sees exactly ``window``."""

        def __init__(self) -> None:
            super().__init__()
            kernels = (10, 8, 6, 5, 5) if window >= 61 else (5, 4, 3, 3, 3)
            widths = [channels, channels, channels * 4 // 3, channels * 5 // 3, channels * 5 // 3]
            layers: list[nn.Module] = []
            c_in = n_in
            for w, k in zip(widths, kernels, strict=True):
                layers += [nn.Conv1d(c_in, w, k), nn.ReLU()]
                c_in = w
            self.features = nn.Sequential(*layers)
            rest = window - sum(k - 1 for k in kernels)
            self.dense = nn.Conv1d(c_in, hidden, rest)  # the window-wide dense layer
            self.out = nn.Conv1d(hidden, n_out, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.relu(self.dense(self.features(x))))

    class TCN(nn.Module):
        """Non-causal dilated residual blocks; receptive field ≈ ``window``."""

        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Conv1d(n_in, channels, 1)
            dil, rf = [], 1
            d = 1
            while rf + 2 * d <= window:
                dil.append(d)
                rf += 2 * d
                d *= 2
            self.dilations = dil
            self.rf = rf
            self.blocks = nn.ModuleList(
                nn.Sequential(
                    nn.Conv1d(channels, channels, 3, dilation=d),
                    nn.GELU(),
                    nn.Conv1d(channels, channels, 1),
                )
                for d in dil
            )
            self.head = nn.Sequential(
                nn.Conv1d(channels, hidden, 1), nn.GELU(), nn.Conv1d(hidden, n_out, 1)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.inp(x)
            for d, b in zip(self.dilations, self.blocks, strict=True):
                h = h[..., d:-d] + b(h)
            # trim to the same output length as seq2point (window - 1 fewer than the input)
            extra = (x.shape[-1] - (window - 1)) - h.shape[-1]
            cut = -extra // 2
            if cut:
                h = h[..., cut : h.shape[-1] - cut]
            return self.head(h)

    if arch == "seq2point":
        return Seq2Point()
    if arch == "tcn":
        return TCN()
    raise ValueError(f"unknown architecture {arch!r} (seq2point or tcn)")


class NeuralDisaggregator(BaseEstimator):  # type: ignore[misc]
    """A multi-output seq2point (or TCN) network in PyTorch; GPU when present, never required."""

    def __init__(
        self,
        appliances: list[str] | None = None,
        arch: str = "seq2point",
        window: int = 49,
        channels: int = 16,
        hidden: int = 64,
        learning_rate: float = 1e-3,
        batch_size: int = 32,
        crop: int = 256,
        epochs: int = 20,
        steps_per_epoch: int = 100,
        patience: int = 5,
        weight_decay: float = 0.0,
        loss: str = "mse",
        seed: int = 0,
        device: str = "auto",
        max_seconds: float | None = None,
        time_features: list[str] | None = None,
        loss_weights: dict[str, float] | None = None,
        floor_candidates_w: list[float] | None = None,
    ) -> None:
        self.appliances = appliances
        self.arch = arch
        self.window = window
        self.channels = channels
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.crop = crop
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.patience = patience
        self.weight_decay = weight_decay
        self.loss = loss
        self.seed = seed
        self.device = device
        self.max_seconds = max_seconds
        self.time_features = time_features
        self.loss_weights = loss_weights
        self.floor_candidates_w = floor_candidates_w

    @property
    def _w(self) -> int:
        return int(self.window) | 1  # odd: the output is the window's midpoint

    @property
    def _n_in(self) -> int:
        return 1 + 2 * len(self.time_features or ())

    def _pad(self, Xn: np.ndarray) -> np.ndarray:
        h = self._w // 2
        return np.pad(Xn, ((0, 0), (h, h)), mode="edge")

    def _inputs(self, Xc: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        """Network input ``(n, T + window - 1, channels)``: the scaled aggregate, edge-padded,
        then sin/cos of each configured cycle at every reading's time (extrapolated into the
        padding along the window's own step)."""
        x = self._pad((Xc - self.x_mean_) / self.x_std_).astype(np.float32)[..., None]
        if not self.time_features:
            return x
        if times is None:
            raise ValueError(
                f"this network uses time features {list(self.time_features)}: pass `times` "
                "(epoch seconds, UTC, of every reading)"
            )
        t = _check_times(times, Xc.shape)
        n, T = t.shape
        step = (t[:, -1:] - t[:, :1]) / (T - 1) if T > 1 else np.full((n, 1), self.step_seconds_)
        h = self._w // 2
        k = np.arange(1, h + 1, dtype=np.float64)[None, :]
        tp = np.concatenate([t[:, :1] - step * k[:, ::-1], t, t[:, -1:] + step * k], axis=1)
        feats = time_channels(tp, self.time_features)  # (n, Tpad, 2F)
        return np.concatenate([x, feats], axis=-1)

    def _weights(self, A: int) -> np.ndarray:
        """Per-appliance loss weights (1 for appliances the config does not name)."""
        w = np.ones(A, np.float32)
        if not self.loss_weights:
            return w
        names = list(self.appliances or [])
        unknown = sorted(set(self.loss_weights) - set(names))
        if unknown:
            raise ValueError(f"loss_weights names appliances not modelled: {unknown}")
        for a, v in self.loss_weights.items():
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"loss weight of {a!r} must be finite and >= 0, got {v}")
            w[names.index(a)] = v
        return w

    def fit(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        X_valid: np.ndarray | None = None,
        valid_score: ValidScore | None = None,
        report: Report | None = None,
        times: np.ndarray | None = None,
        times_valid: np.ndarray | None = None,
    ) -> NeuralDisaggregator:
        """Train on random crops; keep the weights with the best ``valid_score`` (higher is
        better; default: the negative training loss of the epoch's last batch).

        ``times`` (epoch seconds of every reading, ``(n, T)`` or ``(T,)``) is needed when
        ``time_features`` is set, and ``times_valid`` likewise for ``X_valid``."""
        import torch

        Xc, Yc = _check_xy(X, Y)
        assert Yc is not None
        if self.loss not in ("mse", "l1"):
            raise ValueError(f"loss must be mse or l1, got {self.loss!r}")
        unknown_tf = sorted(set(self.time_features or ()) - set(TIME_CYCLES))
        if unknown_tf:
            raise ValueError(f"unknown time_features {unknown_tf} (have {sorted(TIME_CYCLES)})")
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        dev = _device(self.device)
        A = Yc.shape[-1]
        self.x_mean_ = float(np.mean(Xc))
        self.x_std_ = float(np.std(Xc)) or 1.0
        self.y_scale_ = np.nan_to_num(np.nanstd(Yc.reshape(-1, A), axis=0), nan=1.0)
        self.y_scale_ = np.where(self.y_scale_ > 0, self.y_scale_, 1.0).astype(np.float32)
        self.step_seconds_ = 0.0
        self.floor_w_ = np.zeros(A, np.float32)  # none until fit_floors
        if self.time_features:
            if times is None:
                raise ValueError(
                    f"time_features {list(self.time_features)} need `times` (epoch seconds)"
                )
            t = _check_times(times, Xc.shape)
            d = np.diff(t, axis=1)
            self.step_seconds_ = float(np.median(d)) if d.size else 0.0
        Xp = self._inputs(Xc, times)
        Yn = (Yc / self.y_scale_).astype(np.float32)
        n, T = Xc.shape
        L = int(min(self.crop, T))
        net = _build_net(self.arch, self._w, self.channels, self.hidden, A, self._n_in).to(dev)
        w_app = torch.from_numpy(self._weights(A))[None, :, None].to(dev)
        self.net_ = net
        opt = torch.optim.Adam(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        Xt = torch.from_numpy(Xp)
        Yt = torch.from_numpy(np.ascontiguousarray(Yn.transpose(0, 2, 1)))  # (n, A, T)
        idx_w = np.arange(L + self._w - 1)
        idx_o = np.arange(L)
        best, best_state, bad, step = -math.inf, None, 0, 0
        self.history_: list[float] = []
        t0 = time.perf_counter()
        for epoch in range(self.epochs):
            net.train()
            for _ in range(self.steps_per_epoch):
                rows = rng.integers(0, n, self.batch_size)
                starts = rng.integers(0, T - L + 1, self.batch_size)
                xb = Xt[rows[:, None], starts[:, None] + idx_w[None, :]].transpose(1, 2).to(dev)
                yb = Yt[
                    rows[:, None, None],
                    torch.arange(A)[None, :, None],
                    (starts[:, None] + idx_o[None, :])[:, None, :],
                ].to(dev)
                mask = torch.isfinite(yb)
                pred = net(xb)
                diff = pred - torch.nan_to_num(yb)
                per = (diff.abs() if self.loss == "l1" else diff**2) * w_app
                loss = (per * mask).sum() / mask.sum().clamp(min=1)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
            if valid_score is not None and X_valid is not None:
                score = valid_score(self.predict(X_valid, times=times_valid))
            else:
                score = -float(loss.detach().cpu())
            self.history_.append(score)
            log.debug("epoch %d: valid score %.4f", epoch, score)
            if score > best:
                best, bad = score, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
            if report is not None:
                report(step, score)
            if bad >= self.patience:
                break
            if self.max_seconds is not None and time.perf_counter() - t0 > self.max_seconds:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.best_score_ = best
        self.epochs_run_ = len(self.history_)
        return self

    def predict(
        self, X: np.ndarray, times: np.ndarray | None = None, batch: int = 64
    ) -> np.ndarray:
        """``(n, T, A)`` appliance loads; ``times`` as in :meth:`fit` when the network uses
        time features (ignored otherwise)."""
        import torch

        Xc, _ = _check_xy(X)
        net = self.net_
        net.eval()
        dev = next(net.parameters()).device
        Xp = np.ascontiguousarray(self._inputs(Xc, times).transpose(0, 2, 1))
        outs = []
        with torch.inference_mode():
            for i in range(0, len(Xp), batch):
                xb = torch.from_numpy(Xp[i : i + batch]).to(dev)
                outs.append(net(xb).cpu().numpy())
        out = np.maximum(np.concatenate(outs).transpose(0, 2, 1) * self.y_scale_, 0)
        return np.where(out < self.floor_w_, 0, out).astype(np.float32)

    def fit_floors(
        self, X: np.ndarray, Y: np.ndarray, times: np.ndarray | None = None
    ) -> NeuralDisaggregator:
        """Per appliance, the output below which the prediction is set to zero: the candidate
        of ``floor_candidates_w`` (0 is always one) with the lowest MAE on ``(X, Y)``, which
        should be held-out homes (validation). A network trained on few owners leaves a faint
        load on every home (a pool pump's 20 W where there is no pool); the floor is NILM's
        on-power clipping, fitted rather than guessed."""
        Xc, Yc = _check_xy(X, Y)
        assert Yc is not None
        A = Yc.shape[-1]
        self.floor_w_ = np.zeros(A, np.float32)
        raw = self.predict(Xc, times=times)
        cands = np.unique(np.r_[0.0, np.asarray(self.floor_candidates_w or [], np.float64)])
        if (cands < 0).any() or not np.isfinite(cands).all():
            raise ValueError(f"floor_candidates_w must be finite and >= 0, got {cands.tolist()}")
        ok = np.isfinite(Yc)
        y0 = np.nan_to_num(Yc)
        for j in range(A):
            m = ok[..., j]
            if not m.any():
                continue
            p, t = raw[..., j][m], y0[..., j][m]
            err = [np.abs(np.where(p < c, 0, p) - t).mean() for c in cands]
            self.floor_w_[j] = cands[int(np.argmin(err))]  # ties: the smallest floor
        return self

    # persistence without pickle: parameters and scalers as JSON, weights as a torch state
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "neural",
            "params": self.get_params(),
            "x_mean_": self.x_mean_,
            "x_std_": self.x_std_,
            "y_scale_": self.y_scale_.tolist(),
            "step_seconds_": self.step_seconds_,
            "floor_w_": self.floor_w_.tolist(),
        }

    def save(self, path: Path) -> None:
        import torch

        path.mkdir(parents=True, exist_ok=True)
        (path / "estimator.json").write_text(json.dumps(self.to_dict()))
        buf = io.BytesIO()
        torch.save({k: v.cpu() for k, v in self.net_.state_dict().items()}, buf)
        (path / "weights.pt").write_bytes(buf.getvalue())


def load_estimator(path: Path, device: str = "auto") -> Any:
    """An estimator saved with ``save_estimator`` (any kind)."""
    meta = json.loads((path / "estimator.json").read_text())
    kind = meta["kind"]
    est: Any
    if kind == "mean":
        est = MeanDisaggregator(meta["appliances"])
        est.mean_ = np.asarray(meta["mean_"], np.float32)
        return est
    if kind == "co":
        est = CombinatorialOptimisation(meta["appliances"])
        states = [np.asarray(s, np.float32) for s in meta["states_"]]
        est.states_ = states
        grids = np.meshgrid(*states, indexing="ij")
        combos = np.stack([g.ravel() for g in grids], 1)
        est.combos_ = combos[np.argsort(combos.sum(1), kind="stable")].astype(np.float32)
        est.totals_ = est.combos_.sum(1)
        return est
    import torch

    params = {**meta["params"], "device": device}
    est = NeuralDisaggregator(**params)
    est.x_mean_, est.x_std_ = float(meta["x_mean_"]), float(meta["x_std_"])
    est.y_scale_ = np.asarray(meta["y_scale_"], np.float32)
    est.step_seconds_ = float(meta.get("step_seconds_", 0.0))
    est.floor_w_ = np.asarray(meta.get("floor_w_", np.zeros(len(est.y_scale_))), np.float32)
    net = _build_net(est.arch, est._w, est.channels, est.hidden, len(est.y_scale_), est._n_in)
    state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    est.net_ = net.to(_device(device))
    return est


def save_estimator(est: Any, path: Path) -> Path:
    """Write any of the estimators above to a folder (JSON, plus weights for networks)."""
    if isinstance(est, NeuralDisaggregator):
        est.save(path)
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "estimator.json").write_text(json.dumps(est.to_dict()))
    return path
