"""The vehicle gate's head and threshold, in numpy: fitted on train, chosen on val.

A class-weighted, L2-penalised logistic regression on standardised pooled features
(Newton's method: a few hundred features, a few thousand photos, a few steps). The
threshold is the highest probability at which no vehicle source of val has more than
`max_refused` of its photos refused; among the L2 strengths tried, the one refusing most
val photos without a vehicle at its own threshold wins (val log-loss breaks ties).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LinearHead:
    """logit = ((features - mean) / scale) @ weights + bias."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(((features - self.mean) / self.scale) @ self.weights + self.bias)

    def folded(self) -> tuple[np.ndarray, float]:
        """(weights, bias) acting on raw features: the standardisation folded in."""
        weights = self.weights / self.scale
        return weights, float(self.bias - (self.mean * weights).sum())


@dataclass(frozen=True)
class Examples:
    features: np.ndarray
    vehicle: np.ndarray
    """bool per row."""
    sources: np.ndarray
    """The source name of each row (str)."""

    def __len__(self) -> int:
        return len(self.vehicle)

    def columns(self, keep: np.ndarray) -> Examples:
        return Examples(self.features[:, keep], self.vehicle, self.sources)


def fit_head(examples: Examples, l2: float, steps: int = 30) -> LinearHead:
    """Logistic regression, positive and negative classes weighted to equal total weight."""
    x, y = examples.features, examples.vehicle.astype(np.float64)
    if y.all() or not y.any():
        raise ValueError("the gate needs photos with and without a vehicle to learn from")
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0
    xs = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    sample_weight = np.where(y > 0, 0.5 / y.sum(), 0.5 / (1 - y).sum()) * len(y)
    penalty = np.full(xs.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not penalised
    w = np.zeros(xs.shape[1])
    for _ in range(steps):
        p = _sigmoid(xs @ w)
        grad = xs.T @ (sample_weight * (p - y)) / len(y) + penalty * w
        curvature = sample_weight * p * (1 - p) / len(y)
        hessian = (xs * curvature[:, None]).T @ xs + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, grad)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return LinearHead(mean, scale, w[:-1], float(w[-1]))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))))


def probabilities(head: LinearHead, features: np.ndarray) -> np.ndarray:
    return _sigmoid(head.logits(features))


def choose_threshold(
    p: np.ndarray,
    examples: Examples,
    max_refused: float,
    allowed: Mapping[str, int] | None = None,
) -> float:
    """The highest threshold (refused below it) at which no vehicle source's share of
    refused photos exceeds `max_refused`; with `allowed`, no source refuses more of its
    photos than the count it names (a served gate's own refusals: `refused_counts`)."""
    limits = []
    for source in np.unique(examples.sources[examples.vehicle]):
        scores = np.sort(p[examples.vehicle & (examples.sources == source)])
        may = int(np.floor(max_refused * len(scores)))  # photos it may refuse
        allowed_here = may if allowed is None else min(may, allowed.get(str(source), 0))
        limits.append(float(scores[allowed_here]))  # refusing p < this refuses that many
    return float(np.clip(min(limits), 1e-4, 1 - 1e-4))


def refused_shares(p: np.ndarray, examples: Examples, threshold: float) -> dict[str, float]:
    """Per source: the share of its photos refused (probability below the threshold)."""
    return {
        str(source): float((p[examples.sources == source] < threshold).mean())
        for source in np.unique(examples.sources)
    }


def log_loss(p: np.ndarray, vehicle: np.ndarray) -> float:
    """Class-balanced log-loss: the mean of each class's mean."""
    eps = 1e-7
    pos = -np.log(np.clip(p[vehicle], eps, 1)).mean()
    neg = -np.log(np.clip(1 - p[~vehicle], eps, 1)).mean()
    return float((pos + neg) / 2)


def refused_counts(p: np.ndarray, examples: Examples, threshold: float) -> dict[str, int]:
    """Per vehicle source: how many of its photos are refused (probability below the
    threshold)."""
    return {
        str(source): int((p[examples.vehicle & (examples.sources == source)] < threshold).sum())
        for source in np.unique(examples.sources[examples.vehicle])
    }


def select_head(
    train: Examples,
    val: Examples,
    l2_strengths: Sequence[float],
    max_refused: float,
    allowed: Mapping[str, int] | None = None,
) -> tuple[LinearHead, float, dict[str, Any]]:
    """(head, threshold, selection report): each L2 strength fitted on train, judged on val."""
    trials: list[dict[str, Any]] = []
    fitted = []
    for l2 in l2_strengths:
        head = fit_head(train, l2)
        p = probabilities(head, val.features)
        threshold = choose_threshold(p, val, max_refused, allowed)
        shares = refused_shares(p, val, threshold)
        trials.append(
            {
                "l2": l2,
                "threshold": threshold,
                "val_log_loss": log_loss(p, val.vehicle),
                "val_refused": shares,
            }
        )
        fitted.append((head, threshold))
    best = max(
        range(len(trials)),
        key=lambda k: (_non_vehicle_share(trials[k], val), -trials[k]["val_log_loss"]),
    )
    head, threshold = fitted[best]
    return head, threshold, {"chosen": trials[best], "trials": trials}


def _non_vehicle_share(trial: dict[str, Any], val: Examples) -> float:
    names = {str(s) for s in np.unique(val.sources[~val.vehicle])}
    return float(np.mean([trial["val_refused"][n] for n in names]))
