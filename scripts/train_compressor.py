"""Train a small convolutional autoencoder on synthetic datacubes, with the benchmark as its validation step.

    python scripts/train_compressor.py [--data DIR] [--dim 64] [--steps 1500] [--eval_every 300]

The compressor is a flax autoencoder whose bottleneck is the embedding: every season and band of a
location's cube, as channels of one image, goes through two stride-2 convolutions, a mean over the
image and a dense layer to `--dim` numbers; a dense layer and two transposed convolutions decode it.
Adam (optax) trains it on the mean squared reconstruction error of the standardised pixels.

Before training and every `--eval_every` steps the encoder embeds every location (a JAX array, left
on the device) and `neuco_jax.Benchmark.score` scores it with the packaged linear config
(`--folds` folds; `--probe_epochs` epochs, more than its 10, which are sized for the real data
set's 13,000 locations): the printed mean Q over the tasks is the benchmark as a training callback.
The Benchmark is built once, so only its first call compiles. The cubes come from
`neuco_jax.synthetic_cubes.make_cubes`, whose labels are statistics of the pixels (NDVI, clouds,
heat, no-data; two tasks are random). At the end it prints the Q curve and each task's Q before
and after training.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import yaml

import neuco_jax
from neuco_jax.config import config_from_dict, default_config_text
from neuco_jax.datacube import MODALITIES, SEASONS, CubeReader
from neuco_jax.synthetic_cubes import make_cubes


class Encoder(nn.Module):
    """(batch, y, x, channels) -> (batch, dim): two stride-2 convolutions, a spatial mean, a dense layer.

    The mean over the image keeps what the labels measure (statistics of the whole location) and drops
    where in the image things are; a flattened feature map instead scored lower (mean Q about 3
    against 11 at the default size).
    """

    dim: int
    width: int

    @nn.compact
    def __call__(self, x):
        h = nn.gelu(nn.Conv(self.width, (3, 3), strides=2)(x))  # (batch, y/2, x/2, width)
        h = nn.gelu(nn.Conv(2 * self.width, (3, 3), strides=2)(h))  # (batch, y/4, x/4, 2 width)
        return nn.Dense(self.dim)(h.mean(axis=(1, 2)))


class Decoder(nn.Module):
    """(batch, dim) -> (batch, y, x, channels): a dense layer to a (y/4, x/4) grid, two transposed convolutions."""

    shape: tuple[int, int, int]  # (y, x, channels) of one cube
    width: int

    @nn.compact
    def __call__(self, z):
        ny, nx, channels = self.shape
        h = nn.gelu(nn.Dense(ny // 4 * nx // 4 * 2 * self.width)(z))
        h = h.reshape(z.shape[0], ny // 4, nx // 4, 2 * self.width)
        h = nn.gelu(nn.ConvTranspose(self.width, (3, 3), strides=(2, 2))(h))  # (batch, y/2, x/2, width)
        return nn.ConvTranspose(channels, (3, 3), strides=(2, 2))(h)  # (batch, y, x, channels)


class Autoencoder(nn.Module):
    """Encoder and decoder; `encode` gives the bottleneck, the embedding the benchmark scores."""

    dim: int
    shape: tuple[int, int, int]
    width: int = 16

    def setup(self):
        self.encoder = Encoder(self.dim, self.width)
        self.decoder = Decoder(self.shape, self.width)

    def __call__(self, x):
        return self.decode(self.encode(x))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)


def cubes_and_labels(data: Path, n_ids: int, size: int, modalities: Sequence[str], seed: int) -> tuple[Path, Path]:
    """(cube root, labels folder): synthetic cubes made in `data`, or reused when it holds them already.

    A folder whose cubes are of another count or size is refused rather than overwritten in part
    (make_cubes would leave the other run's extra ids beside the new ones).
    """
    if (data / "labels").is_dir():
        reader = CubeReader(data, modalities=modalities)  # InputError when a modality is missing
        if len(reader.ids) != n_ids or reader.shape[1:] != (size, size):
            raise SystemExit(f"{data}: holds {len(reader.ids)} cubes of {reader.shape[1]}x{reader.shape[2]} pixels, "
                             f"not {n_ids} of {size}x{size}; pass those --n_ids/--size or another --data folder")
        print(f"reusing the cubes and labels in {data}")
        return data, data / "labels"
    t0 = time.perf_counter()
    made = make_cubes(data, n_ids=n_ids, size=size, seed=seed, modalities=modalities)
    print(f"made {n_ids} synthetic cubes of {size}x{size} pixels in {data} ({time.perf_counter() - t0:.1f} s)")
    return made.root, made.labels_dir


def read_images(root: Path, modalities: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(ids, images): every location's cube as one image, images: (n_ids, y, x, time * channels) float32.

    Each channel (a season's band) is standardised over all locations and pixels: S2 numbers
    (thousands) and S1 decibels (tens) would otherwise weigh on the loss by their units.
    """
    reader = CubeReader(root, modalities=modalities)
    cubes = np.concatenate([x for _, x in reader.batches(64)])  # (n_ids, time, channels, y, x)
    n, n_time, channels, ny, nx = cubes.shape
    images = cubes.transpose(0, 3, 4, 1, 2).reshape(n, ny, nx, n_time * channels)  # channels last, as flax's Conv
    mean = images.mean(axis=(0, 1, 2), dtype=np.float64)
    std = images.std(axis=(0, 1, 2), dtype=np.float64)
    return list(reader.ids), ((images - mean) / np.maximum(std, 1e-6)).astype(np.float32)


def reconstruction_loss(model: Autoencoder, params, images):
    """Mean squared error of the reconstruction, images: (batch, y, x, channels)."""
    return jnp.mean((model.apply(params, images) - images) ** 2)


def train_step(params, opt_state, images, key, *, model: Autoencoder, optimizer, batch_size: int):
    """One Adam step on a minibatch of `batch_size` locations drawn from images: (n_ids, y, x, channels).

    Drawn with replacement, keyed by the step: no epoch bookkeeping, and the whole data set stays
    on the device (only the key crosses over per step).
    """
    batch = images[jax.random.randint(key, (batch_size,), 0, images.shape[0])]
    loss, grads = jax.value_and_grad(reconstruction_loss, argnums=1)(model, params, batch)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def embed_all(params, images, *, model: Autoencoder, batch_size: int):
    """(embeddings: (n_ids, dim), reconstruction loss over every location), in batches to bound memory."""
    n = images.shape[0]
    pad = -n % batch_size
    padded = jnp.pad(images, ((0, pad), (0, 0), (0, 0), (0, 0))).reshape(-1, batch_size, *images.shape[1:])

    def one(batch):  # (batch_size, y, x, channels) -> (batch_size, dim), (batch_size,) squared errors
        z = model.apply(params, batch, method=Autoencoder.encode)
        error = (model.apply(params, z, method=Autoencoder.decode) - batch) ** 2
        return z, error.mean(axis=(1, 2, 3))

    z, errors = jax.lax.map(one, padded)  # (batches, batch_size, dim), (batches, batch_size)
    return z.reshape(-1, z.shape[-1])[:n], errors.reshape(-1)[:n].mean()


def benchmark_config(folds: int, probe_epochs: int):
    """The packaged linear config (the reference's sample config) with fewer folds and epochs."""
    raw = yaml.safe_load(default_config_text("linear"))
    raw["k_folds"] = folds
    raw["probe_params"]["epochs"] = probe_epochs
    return config_from_dict(raw, "the packaged linear config")


def train(ids: list[str], images: np.ndarray, bench, *, dim: int, width: int, steps: int, eval_every: int,
          batch_size: int, learning_rate: float, seed: int) -> list[dict]:
    """Train the autoencoder, scoring its embeddings with `bench` at step 0 and every eval_every steps.

    Args:
      ids: one location id per image.
      images: (n_ids, y, x, channels) standardised float32 images.
      bench: a neuco_jax.Benchmark of the locations' labels.
      dim, width: the embedding size and the first convolution's channels.
      steps, eval_every, batch_size, learning_rate, seed: the training run; the last step is always scored.

    Returns:
      One dict per evaluation: step, loss (reconstruction over every location), q (mean Q over
      the tasks), seconds (the score call) and result (the neuco_jax.Result).
    """
    model = Autoencoder(dim, images.shape[1:], width)
    key = jax.random.key(seed)
    images = jax.device_put(images)
    params = jax.jit(model.init)(key, images[:1])  # one compiled program: op by op, init is twice as slow
    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(params)
    step_fn = jax.jit(functools.partial(train_step, model=model, optimizer=optimizer, batch_size=batch_size))
    embed_fn = jax.jit(functools.partial(embed_all, model=model, batch_size=batch_size))

    curve = []
    for step in range(steps + 1):
        if step % eval_every == 0 or step == steps:
            z, loss = embed_fn(params, images)
            z.block_until_ready()  # the score call's time below is the benchmark's alone
            t0 = time.perf_counter()
            result = bench.score(ids, z, method_name=f"step_{step}")
            seconds = time.perf_counter() - t0
            curve.append({"step": step, "loss": float(loss), "q": result.overall_q, "seconds": seconds,
                          "result": result})
            print(f"step {step:6d}  reconstruction {float(loss):.4f}  mean Q {result.overall_q:7.3f}  "
                  f"score {seconds:.2f} s", flush=True)
        if step < steps:
            params, opt_state, _ = step_fn(params, opt_state, images, jax.random.fold_in(key, step + 1))
    return curve


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None,
                    help="folder for the synthetic cubes and labels, reused when it holds --n_ids cubes of "
                         "--size pixels (default: a temporary folder, removed at the end)")
    ap.add_argument("--n_ids", type=int, default=512, help="locations")
    ap.add_argument("--size", type=int, default=32, help="image height and width in pixels, a multiple of 4")
    ap.add_argument("--modalities", nargs="+", default=["s2l2a"], choices=list(MODALITIES),
                    help="modalities read (all four seasons of each)")
    ap.add_argument("--dim", type=int, default=64, help="embedding size (the bottleneck)")
    ap.add_argument("--width", type=int, default=16, help="channels of the first convolution")
    ap.add_argument("--steps", type=int, default=1500, help="Adam steps")
    ap.add_argument("--eval_every", type=int, default=300, help="steps between benchmark scores")
    ap.add_argument("--batch_size", type=int, default=32, help="locations per training step")
    ap.add_argument("--learning_rate", type=float, default=1e-3)
    ap.add_argument("--folds", type=int, default=10, help="the benchmark's k_folds (the packaged config: 40)")
    ap.add_argument("--probe_epochs", type=int, default=100,
                    help="the linear probe's epochs (packaged: 10, sized for about 13,000 locations; "
                         "at 512 its 80 steps leave the probe near its initial weights)")
    ap.add_argument("--seed", type=int, default=0, help="the cubes, the initial weights and the minibatches")
    args = ap.parse_args(argv)
    for name in ("n_ids", "size", "dim", "width", "steps", "eval_every", "batch_size"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} {getattr(args, name)}: expected a positive integer")
    if args.size % 4:
        ap.error(f"--size {args.size}: expected a multiple of 4 (two stride-2 convolutions)")

    with tempfile.TemporaryDirectory(prefix="neuco_cubes_") as scratch:
        data = args.data if args.data is not None else Path(scratch)
        root, labels_dir = cubes_and_labels(data, args.n_ids, args.size, args.modalities, args.seed)
        ids, images = read_images(root, args.modalities)
        print(f"{len(ids)} locations, images {images.shape[1]}x{images.shape[2]} with {images.shape[3]} channels "
              f"({len(SEASONS)} seasons of {', '.join(args.modalities)}); embedding dim {args.dim}")
        bench = neuco_jax.Benchmark(labels_dir, benchmark_config(args.folds, args.probe_epochs))
        t0 = time.perf_counter()
        curve = train(ids, images, bench, dim=args.dim, width=args.width, steps=args.steps,
                      eval_every=args.eval_every, batch_size=args.batch_size, learning_rate=args.learning_rate,
                      seed=args.seed)
    print(f"\n{args.steps} steps and {len(curve)} scores in {time.perf_counter() - t0:.1f} s; the Q curve:")
    print("  step  reconstruction  mean Q  score s")
    for point in curve:
        print(f"{point['step']:6d}  {point['loss']:14.4f}  {point['q']:6.3f}  {point['seconds']:7.2f}")
    first, last = curve[0]["result"].tasks, curve[-1]["result"].tasks
    print(f"\nQ per task  {'step 0':>22s}  {'step ' + str(curve[-1]['step']):>10s}")
    for name, task in last.items():
        print(f"{name:22s}  {first[name].q:10.2f}  {task.q:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
