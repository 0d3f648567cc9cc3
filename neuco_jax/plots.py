"""`enable_plots`: per-task figures drawn from arrays the compiled pass already returned.

Per task folder: `loss_train.png` and `loss_validation.png` (one curve per fold
over epochs; linear probes only: ridge has no epochs), and per fold
`fold_<k>_confusion.png` (classification, positive
as the run's F1 counts it, see `metric_rule`) or `fold_<k>_scatter.png`
(regression, true vs predicted), from the held-out rows at the fold's best
epoch. Nothing is trained again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def confusion(y_true: np.ndarray, logits: np.ndarray, metric_rule: str = "reference") -> np.ndarray:
    """2 x 2 counts, rows = true class (0, 1), columns = predicted class.

    A logit is predicted positive exactly as the fold's F1 counted it (the engine's
    predicted_positive under `metric_rule`), so the matrix and the fold's score agree.
    The reference's own confusion plot thresholds at logit > 0 whatever its F1 did. An SVM's
    decisions (metric_rule "libsvm") are positive at >= 0, as SVC.predict's.
    """
    if metric_rule == "libsvm":
        pred = (np.asarray(logits) >= 0).astype(int)
    else:
        from neuco_jax.engine import predicted_positive  # jax: imported only when plots are drawn

        pred = np.asarray(predicted_positive(np.asarray(logits, np.float32)[None],
                                             np.ones((1, len(logits)), np.float32), metric_rule == "reference"))[0]
    true = (y_true > 0.5).astype(int)
    return np.array([[np.sum((true == t) & (pred == p)) for p in (0, 1)] for t in (0, 1)])


def write_task_plots(folder: Path, task: str, task_type: str, train_loss: np.ndarray, test_loss: np.ndarray,
                     y_test: list[np.ndarray], logits: list[np.ndarray], metric_rule: str = "reference",
                     curve_axis: str = "epoch") -> None:
    """Draw one task's figures into `folder`.

    Args:
      train_loss, test_loss: (folds, steps) per-fold curves: the mean minibatch loss and held-out loss
        per epoch, or (curve_axis "candidate", the SVM) the training and held-out 'scoring' per
        hyperparameter setting, as the reference plots them; None for ridge, which gets no curves.
      y_test, logits: per fold, the held-out labels and the logits at the best epoch.
      metric_rule: the run's F1 rule, which the confusion matrices follow.
    """
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    for name, loss in (("train", train_loss), ("validation", test_loss)) if train_loss is not None else ():
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, curve in enumerate(loss):
            ax.plot(np.arange(1, len(curve) + 1), curve, lw=1, alpha=0.6,
                    label=f"fold {k}" if len(loss) <= 10 else None)
        what = "loss" if curve_axis == "epoch" else "scoring"
        ax.set(xlabel="epoch" if curve_axis == "epoch" else "hyperparameter setting", ylabel=what,
               title=f"{task}: {name} {what}, {len(loss)} folds")
        if len(loss) <= 10:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / f"loss_{name}.png", dpi=90)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(4, 4))
    for k, (y, z) in enumerate(zip(y_test, logits)):
        ax.clear()
        if task_type == "classification":
            counts = confusion(y, z, metric_rule)
            ax.imshow(counts, cmap="Blues")
            for (i, j), c in np.ndenumerate(counts):
                ax.text(j, i, str(c), ha="center", va="center")
            ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="true",
                   title=f"{task}: fold {k}")
            fig.savefig(folder / f"fold_{k}_confusion.png", dpi=80)
        else:
            ax.scatter(y, z, s=6, alpha=0.6)
            lo, hi = float(min(y.min(), z.min())), float(max(y.max(), z.max()))
            ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
            ax.set(xlabel="true (normalised)", ylabel="predicted", title=f"{task}: fold {k}")
            fig.savefig(folder / f"fold_{k}_scatter.png", dpi=80)
    plt.close(fig)
