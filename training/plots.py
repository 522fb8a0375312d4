"""Offline plots (matplotlib's bundled DejaVu font; nothing is fetched).

Training curves, precision-recall curves per class, confusion matrices and sample
predictions drawn over the photo.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["font.family"] = "DejaVu Sans"
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(results_csv: Path, out: Path) -> Path:
    plt = _pyplot()
    with results_csv.open() as handle:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(handle)]
    keys = [k for k in rows[0] if k not in ("epoch", "time") and not k.startswith("lr/")]
    cols = 4
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    epochs = [float(r["epoch"]) for r in rows]
    for ax, key in zip(axes.flat, keys, strict=False):
        ax.plot(epochs, [float(r[key]) for r in rows], marker=".")
        ax.set_title(key, fontsize=9)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def plot_pr_curves(curves: dict[str, tuple[Sequence[float], Sequence[float]]], out: Path) -> Path:
    """curves: class name -> (recall points, precision points)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, (recall, precision) in curves.items():
        ax.plot(recall, precision, label=name, linewidth=1)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("mask precision-recall (IoU 0.5)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def plot_confusion(matrix: Any, labels: Sequence[str], out: Path, title: str) -> Path:
    plt = _pyplot()
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def save_overlay(image_bgr: Any, masks: Any, labels: Sequence[str], out: Path) -> Path:
    """Draw instance masks and labels over a photo (OpenCV, its built-in Hershey font)."""
    import cv2
    import numpy as np

    canvas = image_bgr.copy()
    rng = np.random.default_rng(0)
    for mask, label in zip(masks, labels, strict=True):
        colour = rng.integers(60, 255, 3).tolist()
        canvas[mask > 0] = (0.5 * canvas[mask > 0] + 0.5 * np.array(colour)).astype(canvas.dtype)
        ys, xs = np.nonzero(mask)
        if len(xs):
            org = (int(xs.min()), max(int(ys.min()) - 3, 10))
            cv2.putText(canvas, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
    cv2.imwrite(str(out), canvas)
    return out
