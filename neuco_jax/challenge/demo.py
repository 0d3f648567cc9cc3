"""A demo challenge folder built from the synthetic benchmark (neuco_jax.synthetic), with a known ranking.

    <root>/challenge.yaml, config.yaml, dev_ids.txt
    <root>/labels/<task>__<type>.csv                 the synthetic benchmark's hidden labels
    <root>/submissions/<phase>/team_alpha/alpha.csv          method_a (the best)
                              /team_beta/beta.parquet        method_b
                              /team_gamma/gamma.zarr.zip     method_c, a zipped zarr group
                              /team_delta/delta.npz          the random baseline
                              /team_epsilon/broken.zarr.zip  a corrupt archive (rejected)

Phase `dev` scores 6 of the 11 tasks on 70% of the ids; `final` scores all.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from neuco_jax.files import atomic_path
from neuco_jax.stores import convert
from neuco_jax.synthetic import make_benchmark

DEV_TASKS = ("biomass_mean", "crops", "landcover_forest", "clouds_reg", "heatisland_mean", "random_cls")
TEAMS = {"team_alpha": ("method_a", "alpha.csv"), "team_beta": ("method_b", "beta.parquet"),
         "team_gamma": ("method_c", "gamma.zarr.zip"), "team_delta": ("random_baseline", "delta.npz")}
BROKEN = ("team_epsilon", "broken.zarr.zip")


@dataclasses.dataclass(frozen=True)
class DemoChallenge:
    """root: the challenge folder; expected_order: the valid teams, best first; broken: the malformed team."""

    root: Path
    expected_order: list[str]
    broken: str


def zip_folder(folder: Path, archive: Path) -> None:
    """Zip a folder's files (paths relative to the folder), as a team would zip a zarr group."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())


def write_submission(source: Path, target: Path) -> None:
    """Write a CSV submission as `target`'s format: any store, or a .zarr.zip (a zipped zarr group)."""
    if target.name.endswith(".zarr.zip"):
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            convert(source, Path(tmp) / "store.zarr")
            zip_folder(Path(tmp) / "store.zarr", target)
    elif target.suffix == ".csv":
        shutil.copyfile(source, target)
    else:
        convert(source, target)


def _config_text(k_folds: int, epochs: int, probe_type: str, learning_rate: float) -> str:
    if probe_type == "ridge":
        probe = "probe_type: ridge\nprobe_params:\n  alphas: [0.1, 1.0, 10.0]\n"
    else:
        probe = f"probe_type: linear\nprobe_params:\n  batch_size: 64\n  epochs: {epochs}\n  learning_rate: {learning_rate}\n"
    return f"# the evaluation config of the demo challenge (any `neuco-jax evaluate` config)\nk_folds: {k_folds}\n{probe}"


def _challenge_text(dim: int) -> str:
    tasks = ", ".join(DEV_TASKS)
    return f"""# neuco-jax challenge: the organiser's rules (see the README, "Running a challenge")
name: NeuCo-Bench demo challenge
labels: labels                 # hidden <task>__<type>.csv files, never published
config: config.yaml            # the evaluation config
embedding_dim: {dim}             # the cap: more dimensions are rejected, fewer zero-padded
anonymize_tasks: true          # public outputs call tasks task_01, task_02, ...
selection: best                # each team's best submission is ranked (or: latest)
max_submissions_per_day: 5
max_file_bytes: 200000000
min_coverage: 1.0              # every id must be embedded
feedback: tasks                # teams see status, reason, mean Q, ranks and per-task Q (anonymised)
phases:
  dev:
    tasks: [{tasks}]
    ids: dev_ids.txt           # the dev phase scores 70% of the ids
  final:
    tasks: all
"""


def make_demo_challenge(root, n_ids: int = 2000, dim: int = 64, k_folds: int = 10, epochs: int = 10,
                        probe_type: str = "linear", learning_rate: float = 0.001, seed: int = 0, phases=("dev", "final")) -> DemoChallenge:
    """Write the demo challenge folder at `root` (which must not exist); it appears whole or not at all."""
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} exists; choose a new folder for the demo challenge")
    with atomic_path(root) as staging:
        staging.mkdir(parents=True)
        bench = make_benchmark(staging / ".synthetic", n_ids=n_ids, dim=dim, n_methods=3, seed=seed)
        shutil.copytree(bench.labels_dir, staging / "labels")
        ids = sorted({line.split(",", 1)[0] for p in (staging / "labels").glob("*.csv")
                      for line in p.read_text().splitlines()[1:]})
        rng = np.random.default_rng(seed)
        dev_ids = sorted(rng.choice(ids, size=int(0.7 * len(ids)), replace=False))
        (staging / "dev_ids.txt").write_text("".join(i + "\n" for i in dev_ids))
        (staging / "config.yaml").write_text(_config_text(k_folds, epochs, probe_type, learning_rate))
        (staging / "challenge.yaml").write_text(_challenge_text(dim))
        for phase in phases:
            for team, (method, name) in TEAMS.items():
                folder = staging / "submissions" / phase / team
                folder.mkdir(parents=True)
                write_submission(bench.submissions[method], folder / name)
            folder = staging / "submissions" / phase / BROKEN[0]
            folder.mkdir(parents=True)
            good = staging / "submissions" / phase / "team_gamma" / TEAMS["team_gamma"][1]
            data = good.read_bytes()
            (folder / BROKEN[1]).write_bytes(data[: len(data) // 2])  # truncated: a corrupt archive
        shutil.rmtree(staging / ".synthetic")
    return DemoChallenge(root, list(TEAMS), BROKEN[0])
