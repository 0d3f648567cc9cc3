"""neuco_jax against the PyTorch + torchmetrics reference loop on the scoring edge cases.

Writes a small labels folder with two tasks where torchmetrics' rules matter,
evaluates it with neuco_jax under both `metric_rule`s and with
scripts/torch_reference.py (which scores with torchmetrics when installed), and
prints each task's mean score with the z of the difference, as scripts/bench.py
does (unpaired standard error of two k-fold means; the runs share folds, not
initial weights or batch orders):

  mostly_constant (regression, 200 rows): 95% of labels identical, so a fifth
      to a third of the folds hold out one label value only (R^2 0 or 1 there, not -inf);
  weak_cls (classification, 1000 rows, 62% positive): near-constant embedding
      columns with a weak signal; held-out logits sit in [0, 1] around the
      log-odds 0.49, where torchmetrics thresholds at 0.5, not at 0.

    python scripts/edge_fidelity.py --torch_python /path/to/venv-with-torch/bin/python [--k_folds 20]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from neuco_jax.config import Config
from neuco_jax.pipeline import evaluate
from neuco_jax.plan import shuffle_split

ROOT = Path(__file__).resolve().parents[1]


def write_edge_cases(folder: Path) -> Path:
    """The two tasks' label files under folder/labels and their submission; returns the submission."""
    rng = np.random.default_rng(11)
    n = 1000
    ids = [f"loc{i:05d}" for i in range(n)]
    x = np.array([3.0, -3.0, 1.5, -1.5]) + 0.2 * rng.normal(size=(n, 4))
    weak = (rng.uniform(size=n) < 0.62 + 0.1 * np.tanh((x[:, 0] - 3) / 0.2)).astype(int)
    constant = np.where(rng.uniform(size=200) < 0.95, 1.0, rng.uniform(0, 3, size=200)).round(3)
    labels = folder / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    for name, values in (("mostly_constant__regression", constant), ("weak_cls__classification", weak)):
        rows = [f"{i},{float(v)!r}" for i, v in zip(ids, values)]
        (labels / f"{name}.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    submission = folder / "weak.csv"
    rows = [f"{i}," + ",".join(repr(float(v)) for v in row) for i, row in zip(ids, x)]
    submission.write_text("id,0,1,2,3\n" + "\n".join(rows) + "\n")
    return submission, constant


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch_python", default=sys.executable, help="a Python with torch and torchmetrics")
    parser.add_argument("--k_folds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.02)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        submission, constant = write_edge_cases(tmp)
        _, test = shuffle_split(len(constant), args.k_folds)
        n_constant = sum(np.ptp(constant[t]) == 0 for t in test)
        jax_scores = {}
        for rule in ("reference", "logit"):
            config = Config(k_folds=args.k_folds, epochs=args.epochs, learning_rate=args.lr, metric_rule=rule)
            (run,) = evaluate(submission, tmp / "labels", config, output_dir=tmp / rule)
            jax_scores[rule] = {s.name: (s.mean_score, s.std_dev) for s in run.scores}
        out = tmp / "torch.json"
        subprocess.run([args.torch_python, str(ROOT / "scripts" / "torch_reference.py"), "--annotation_path",
                        str(tmp / "labels"), "--submission_file", str(submission), "--k_folds", str(args.k_folds),
                        "--epochs", str(args.epochs), "--lr", str(args.lr), "--json", str(out)], check=True)
        torch_scores = json.loads(out.read_text())["results"]

    print(f"k_folds {args.k_folds}, epochs {args.epochs}, lr {args.lr}, batch 64; "
          f"mostly_constant: {n_constant} folds hold out one label value")
    print(f"{'task':<16} {'torch':>15} {'jax reference':>15} {'z':>6} {'jax logit':>15} {'z':>6}")
    for task, t in torch_scores.items():
        cells = [f"{t['mean_score']:.4f} ± {t['std_dev']:.3f}"]
        for rule in ("reference", "logit"):
            mean, std = jax_scores[rule][task]
            se = math.sqrt((std ** 2 + t["std_dev"] ** 2) / args.k_folds) or float("inf")
            cells += [f"{mean:.4f} ± {std:.3f}", f"{(mean - t['mean_score']) / se:+.2f}"]
        print(f"{task:<16} {cells[0]:>15} {cells[1]:>15} {cells[2]:>6} {cells[3]:>15} {cells[4]:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
