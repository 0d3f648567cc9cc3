"""A per-fold PyTorch linear-probe evaluation that works the way the reference NeuCo-Bench does.

This is the baseline that neuco_jax is timed and checked against: one probe at
a time, in one process, torch on the CPU with its default thread count. It
follows the reference's observable protocol (see the project's REFERENCE.md),
written independently:

  load     labels folder (pandas), submission CSV (pandas.read_csv), ids lose a
           trailing .zarr.zip / .zarr, only ids present in the labels are kept,
           non-numeric / NaN cells -> 0, ONE scalar mean and std over the whole
           kept matrix, labels joined by id (label-file order), per-task min-max.
  folds    sklearn ShuffleSplit(k, test_size=0.1, random_state=42) per task.
  a fold   torch nn.Linear(D, 1), AdamW(lr), BCEWithLogitsLoss or MSELoss; a
           DataLoader with a SubsetRandomSampler over the fold's training rows
           (batch 64, rows fetched one by one and collated, as a map-style
           Dataset does) and another over its held-out rows; after every epoch
           the fold's concatenated held-out logits are scored by torchmetrics'
           R2Score / BinaryF1Score (a forward call, as the reference; without
           torchmetrics, by the same rules written out in heldout_score); the
           fold's score is its best epoch.
  a task   nanmean, population nanstd and Q = mean / (0.02 + std) * 2 over folds.

torch (and torchmetrics) are optional dependencies of this script only
(`pip install torch torchmetrics==1.7.1`, the reference's pin).

    python scripts/torch_reference.py --annotation_path DIR --submission_file CSV \
        [--k_folds 40] [--epochs 10] [--batch_size 64] [--lr 1e-3] \
        [--task_filter biomass_mean crops] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import ShuffleSplit
from torch import nn
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler

try:  # the reference's metrics
    from torchmetrics.classification import BinaryF1Score
    from torchmetrics.regression import R2Score
except ImportError:
    BinaryF1Score = R2Score = None

log = logging.getLogger("torch_reference")

SEED = 42
TEST_SIZE = 0.1
TASK_TYPES = {"classification": "classification", "cls": "classification",
              "regression": "regression", "regr": "regression"}


class RowDataset(Dataset):
    """Map-style dataset over one task's rows: item i is (embedding (D,), label scalar)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(x, np.float32))
        self.y = torch.from_numpy(np.asarray(y, np.float32))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def read_labels(annotation_path: Path) -> pd.DataFrame:
    """All `<task>__<type>.csv` files as one frame (id, label, task, task_type); empty labels dropped."""
    frames = []
    for path in sorted(Path(annotation_path).glob("*.csv")):
        task, _, kind = path.stem.partition("__")
        if kind not in TASK_TYPES:
            raise ValueError(f"{path}: unknown task type {kind!r}")
        df = pd.read_csv(path, dtype={"id": str})
        df = df[df["label"].notna()]
        frames.append(df.assign(label=df["label"].astype(np.float64), task=task, task_type=TASK_TYPES[kind]))
    return pd.concat(frames, ignore_index=True)


def read_submission(submission_file: Path, valid_ids: set[str]) -> tuple[pd.Index, np.ndarray]:
    """Cleaned ids and the globally standardised (n, D) float32 embedding of the ids kept."""
    df = pd.read_csv(submission_file, dtype={"id": str})
    df["id"] = df["id"].str.replace(r"\.zarr(\.zip)?$", "", regex=True)
    df = df.set_index("id")
    df = df[df.index.isin(valid_ids)]
    digits = [c for c in df.columns if str(c).isdigit()]
    columns = sorted(digits, key=int) if digits else list(df.columns)
    x = df[columns].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(np.float32)
    std = x.std()
    x = (x - x.mean()) / (std if std != 0 else 1.0)
    return df.index, x


def heldout_score(z: torch.Tensor, y: torch.Tensor, classification: bool) -> float:
    """torchmetrics' BinaryF1Score or R2Score of a fold's held-out logits, by their rules when it is absent.

    F1: logits all in [0, 1] are probabilities (positive above 0.5), else positive when
    sigmoid(z) > 0.5. R^2: 1 when SS_res ~ 0, 0 when SS_tot ~ 0, else 1 - SS_res/SS_tot (~0: within 1e-4).
    """
    if BinaryF1Score is not None:
        return (BinaryF1Score() if classification else R2Score())(z, y).item()
    if classification:
        p = z if bool(((z >= 0) & (z <= 1)).all()) else torch.sigmoid(z)
        pred, pos = p > 0.5, y > 0.5
        tp = (pred & pos).sum().item()
        denom = 2 * tp + (pred & ~pos).sum().item() + (~pred & pos).sum().item()
        return 2 * tp / denom if denom else 0.0
    ss_res = ((y - z) ** 2).sum()
    ss_tot = (y * y).sum() - y.sum() * y.mean()
    if ss_res.abs() <= 1e-4:
        return 1.0
    return 0.0 if ss_tot.abs() <= 1e-4 else (1.0 - ss_res / ss_tot).item()


def train_fold(dataset: RowDataset, train_idx: np.ndarray, test_idx: np.ndarray, classification: bool,
               epochs: int, batch_size: int, lr: float) -> float:
    """Train one probe on a fold's training rows; the best held-out score over its epochs (-inf if all NaN)."""
    train_loader = DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(train_idx))
    test_loader = DataLoader(dataset, batch_size=batch_size, sampler=SubsetRandomSampler(test_idx))
    probe = nn.Linear(dataset.x.shape[1], 1)
    loss_fn = nn.BCEWithLogitsLoss() if classification else nn.MSELoss()
    opt = torch.optim.AdamW(probe.parameters(), lr=lr)
    # The best epoch's weights and the per-epoch loss curves are unused here, but the
    # reference keeps them (for probes and plots), so this loop does the same work.
    best = -math.inf
    train_curve, test_curve = [], []
    for _ in range(epochs):
        probe.train()
        train_losses = []
        for xb, yb in train_loader:
            loss = loss_fn(probe(xb).view(-1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            train_losses.append(loss.detach())
        probe.eval()
        z, y, test_losses = [], [], []
        with torch.no_grad():
            for xb, yb in test_loader:
                zb = probe(xb).view(-1)
                test_losses.append(loss_fn(zb, yb))
                z.append(zb)
                y.append(yb)
        train_curve.append(torch.stack(train_losses).mean().item())
        test_curve.append(torch.stack(test_losses).mean().item())
        score = heldout_score(torch.cat(z), torch.cat(y), classification)
        if score > best:
            best, _best_state = score, {k: v.clone() for k, v in probe.state_dict().items()}
    return best


def run(annotation_path, submission_file, k_folds: int = 40, epochs: int = 10, batch_size: int = 64,
        lr: float = 1e-3, task_filter=None, timings: dict | None = None) -> dict:
    """Evaluate one submission probe by probe; {task: {mean_score, std_dev, q_stat}} in task-name order.

    `timings`, when given, receives wall seconds: "load", "train" and "tasks" ({task: seconds}).
    """
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    t0 = time.perf_counter()
    labels = read_labels(Path(annotation_path))
    ids, x = read_submission(Path(submission_file), set(labels["id"]))
    row_of = pd.Series(np.arange(len(ids)), index=ids)
    labels = labels[labels["id"].isin(row_of.index)]  # inner join, label-file order
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    results, task_seconds = {}, {}
    for task, group in labels.groupby("task", sort=True):
        if task_filter is not None and task not in task_filter:
            continue
        y = group["label"].to_numpy()
        span = y.max() - y.min()
        y = (y - y.min()) / (span if span > 0 else 1.0)
        dataset = RowDataset(x[row_of[group["id"]].to_numpy()], y)
        classification = group["task_type"].iloc[0] == "classification"
        splitter = ShuffleSplit(n_splits=k_folds, test_size=TEST_SIZE, random_state=SEED)
        t_task = time.perf_counter()
        folds = np.array([train_fold(dataset, tr, te, classification, epochs, batch_size, lr)
                          for tr, te in splitter.split(np.arange(len(y)))], np.float64)
        mean, std = float(np.nanmean(folds)), float(np.nanstd(folds))
        results[task] = {"mean_score": mean, "std_dev": std, "q_stat": mean / (0.02 + std) * 2}
        task_seconds[task] = time.perf_counter() - t_task
        log.info("%s: %d rows, mean %.4f, std %.4f, %.1fs", task, len(y), mean, std, task_seconds[task])
    if timings is not None:
        timings.update(load=load_s, train=time.perf_counter() - t0, tasks=task_seconds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotation_path", type=Path, required=True)
    parser.add_argument("--submission_file", type=Path, required=True)
    parser.add_argument("--k_folds", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--task_filter", nargs="+", default=None, help="task names to evaluate (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write {results, timings} here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    timings: dict = {}
    results = run(args.annotation_path, args.submission_file, k_folds=args.k_folds, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, task_filter=args.task_filter, timings=timings)
    print(f"{'task':<24} {'mean_score':>10} {'std_dev':>8} {'q_stat':>8}")
    for task, r in results.items():
        print(f"{task:<24} {r['mean_score']:>10.4f} {r['std_dev']:>8.4f} {r['q_stat']:>8.2f}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"metrics: {'torchmetrics' if R2Score is not None else 'built in'}; "
          f"load {timings['load']:.2f}s, train {timings['train']:.2f}s")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "timings": timings,
                                         "torch": torch.__version__, "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
