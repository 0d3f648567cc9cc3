"""User encoders for tests/test_user_encoder.py, named there as `user_encoders:<name>` specs.

Each takes a concatenated batch x: (batch, time, channels, y, x) float32.
"""

import jax.numpy as jnp
import numpy as np

NOT_CALLABLE = 3


def band_means(x):
    """numpy, float64 out: (batch, time * channels) spatial means. np.asarray keeps jax.jit out."""
    x = np.asarray(x)
    return x.mean(axis=(3, 4), dtype=np.float64).reshape(len(x), -1)


def band_mean_max(x):
    """JAX: (batch, time * 2 * channels), per season the channels' spatial means then maxima."""
    return jnp.concatenate([x.mean((3, 4)), x.max((3, 4))], axis=-1).reshape(x.shape[0], -1)


def one_number_each(x):
    return np.asarray(x).mean(axis=(1, 2, 3, 4))  # (batch,): not 2-D


def drops_a_row(x):
    return np.asarray(x)[1:].mean(axis=(1, 3, 4))  # (batch - 1, channels)


def width_is_batch(x):
    return jnp.zeros((x.shape[0], x.shape[0]))  # the dim changes with the smaller last batch


def nan_in_second_row(x):
    out = np.asarray(x).mean(axis=(1, 3, 4))
    out[1, 2] = np.nan
    return out


def overflows_float32(x):
    return np.full((len(np.asarray(x)), 3), 1e300)  # finite float64, infinite as float32


def text(x):
    return [["a", "b"]] * len(np.asarray(x))
