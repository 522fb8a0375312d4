"""A class-balanced softmax head over pooled features, fitted by L-BFGS: the part-family
stage's head (`training.part_family`) and the benches that try such a head elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SoftmaxHead:
    """probabilities = softmax(((features - mean) / scale) @ weights + bias)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.scale) @ self.weights + self.bias
        z = np.exp(z - z.max(1, keepdims=True))
        return np.asarray(z / z.sum(1, keepdims=True))

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights, bias) on raw features: the standardisation folded in."""
        weights = self.weights / self.scale[:, None]
        return weights, self.bias - self.mean @ weights


def fit_head(features: np.ndarray, labels: np.ndarray, classes: int, l2: float) -> SoftmaxHead:
    """Class-balanced softmax regression with an L2 penalty (L-BFGS)."""
    import torch

    mean, scale = features.mean(0), features.std(0) + 1e-6
    x = torch.from_numpy((features - mean) / scale)
    y = torch.from_numpy(labels)
    counts = np.maximum(np.bincount(labels, minlength=classes), 1)
    sample = torch.from_numpy((len(labels) / (classes * counts))[labels])
    w = torch.zeros(x.shape[1] + 1, classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w], max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w[:-1] + w[-1], y, reduction="none")
        total = (loss * sample).sum() / sample.sum() + l2 * (w[:-1] ** 2).sum()
        total.backward()
        return total

    optimiser.step(closure)
    fitted = w.detach().numpy()
    return SoftmaxHead(mean, scale, fitted[:-1], fitted[-1])
