"""Codabench / CodaLab scoring program: `python -m neuco_jax.codabench <input_dir> <output_dir>`.

The platform unpacks the reference data (the bundle of `neuco-jax challenge
pack`) into `<input_dir>/ref/` and the participant's submission into
`<input_dir>/res/`, runs the program, and reads `<output_dir>/scores.json`,
`{<leaderboard column key>: value}`: here `mean_q` and one column per task
under its public name (the bundle's `metrics`). `detailed_results.html`
beside it shows the team what the rules allow. A rejected submission ends
with one line on stderr (the participant sees it) and exit code 1.

`res/` may hold the store itself (a .csv, .parquet, .npz, a .npy with its
.ids.txt, a .zarr folder or the files of a zarr group) or one .zip / .zarr.zip.
As on EvalAI, one submission's mean Q is not the challenge's
rank-then-aggregate position (see neuco_jax.evalai).
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

from neuco_jax.challenge import inbox
from neuco_jax.errors import InputError, NeucoError


def _bundle(ref: Path) -> Path:
    """The bundle in ref/: its unpacked files, or one zip of it."""
    from neuco_jax.challenge.bundle import MANIFEST

    if (ref / MANIFEST).is_file():
        return ref
    zips = sorted(ref.glob("*.zip"))
    if len(zips) == 1:
        return zips[0]
    raise InputError(f"{ref}: no {MANIFEST} and not one .zip; the reference data must be the bundle of "
                     f"`neuco-jax challenge pack`")


def _submission(res: Path) -> Path:
    """The one store (or archive) in res/."""
    if (res / "zarr.json").is_file():
        return res
    found = [p for p in sorted(res.iterdir()) if not p.name.startswith(".") and not p.name.endswith(inbox.SIDECAR)
             and inbox.extension(p.name) is not None]
    if len(found) != 1:
        raise InputError(f"the submission holds {len(found)} embedding files; submit exactly one "
                         f"(.csv, .parquet, .npz, .npy with its .ids.txt, .zarr, .zarr.zip or .zip)")
    return found[0]


def score(input_dir, output_dir) -> dict:
    """Score `<input_dir>/res` against `<input_dir>/ref`, write `<output_dir>/scores.json`; returns the scores."""
    from neuco_jax.challenge.bundle import score_submission
    from neuco_jax.results import atomic_write_text

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    result = score_submission(_bundle(input_dir / "ref"), _submission(input_dir / "res"))
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_dir / "scores.json", json.dumps(result.metrics, indent=1))
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in result.detail.items())
    atomic_write_text(output_dir / "detailed_results.html",
                      f"<!DOCTYPE html><html><body><table>{rows}</table></body></html>\n")
    return result.metrics


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m neuco_jax.codabench <input_dir> <output_dir>", file=sys.stderr)
        return 2
    try:
        metrics = score(*argv)
    except NeucoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
