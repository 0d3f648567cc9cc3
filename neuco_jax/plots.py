"""`enable_plots`: per-task figures drawn from arrays the compiled pass already returned.

Per task folder: `loss_train.png` and `loss_validation.png` (one curve per fold
over epochs), and per fold `fold_<k>_confusion.png` (classification, positive
when the logit > 0) or `fold_<k>_scatter.png` (regression, true vs predicted),
from the held-out rows at the fold's best epoch. Nothing is trained again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def confusion(y_true: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """2 x 2 counts, rows = true class (0, 1), columns = predicted class (logit > 0)."""
    pred = (logits > 0).astype(int)
    true = (y_true > 0.5).astype(int)
    return np.array([[np.sum((true == t) & (pred == p)) for p in (0, 1)] for t in (0, 1)])


def write_task_plots(folder: Path, task: str, task_type: str, train_loss: np.ndarray, test_loss: np.ndarray,
                     y_test: list[np.ndarray], logits: list[np.ndarray]) -> None:
    """Draw one task's figures into `folder`.

    Args:
      train_loss, test_loss: (folds, epochs) mean minibatch loss and held-out loss.
      y_test, logits: per fold, the held-out labels and the logits at the best epoch.
    """
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    epochs = np.arange(1, train_loss.shape[1] + 1)
    for name, loss in (("train", train_loss), ("validation", test_loss)):
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, curve in enumerate(loss):
            ax.plot(epochs, curve, lw=1, alpha=0.6, label=f"fold {k}" if len(loss) <= 10 else None)
        ax.set(xlabel="epoch", ylabel="loss", title=f"{task}: {name} loss, {len(loss)} folds")
        if len(loss) <= 10:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / f"loss_{name}.png", dpi=90)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(4, 4))
    for k, (y, z) in enumerate(zip(y_test, logits)):
        ax.clear()
        if task_type == "classification":
            counts = confusion(y, z)
            ax.imshow(counts, cmap="Blues")
            for (i, j), c in np.ndenumerate(counts):
                ax.text(j, i, str(c), ha="center", va="center")
            ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="true",
                   title=f"{task}: fold {k} (best epoch)")
            fig.savefig(folder / f"fold_{k}_confusion.png", dpi=80)
        else:
            ax.scatter(y, z, s=6, alpha=0.6)
            lo, hi = float(min(y.min(), z.min())), float(max(y.max(), z.max()))
            ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
            ax.set(xlabel="true (normalised)", ylabel="predicted", title=f"{task}: fold {k} (best epoch)")
            fig.savefig(folder / f"fold_{k}_scatter.png", dpi=80)
    plt.close(fig)
