"""The SVM probe's hyperparameter search: batched rounds in place of skopt's sequential BayesSearchCV.

The reference asks skopt for one candidate at a time (`n_points: 1`), fits it on
every fold, and tells skopt its mean 'scoring'; after `n_initial_points` random
candidates, each next one maximises an acquisition over a surrogate (its sample
config: a random forest). Here the same budget of `n_iter` candidates, from the
same space and priors, is spent in rounds whose candidates are fitted together
(every fold x candidate of a round in one batched solve):

  round 0:     n_initial_points candidates, a Latin hypercube over the space's
               unit cube (stratified in each coordinate, so C and gamma cover
               their log-ranges evenly even at 5 points);
  round r > 0: n_points candidates (at most the budget left), each maximising
               the expected improvement of a Gaussian-process surrogate
               (Matern 5/2, length scale and noise by marginal likelihood
               over a small grid) fitted to every objective seen so far, over
               a pool of prior draws and perturbations of the best candidates;
               within a round the GP believes its own mean at the points
               already picked ("kriging believer"), so a round spreads out.

Coordinates of the unit cube: log C; degree (its index in kernel_degree_list);
log gamma and coef0 when searched; epsilon's index (regression, when listed).
Every draw comes from one numpy Generator seeded with the config's seed, so a
search is deterministic. skopt's own random streams and forest are not
reproduced: the candidates differ from the reference's, the budget and space
do not.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.special import ndtr

from neuco_jax.config import SVMParams

POOL = 2048  # prior draws scored by the acquisition per pick
LOCAL = 256  # perturbations of the best candidates so far, per pick
LENGTH_SCALES = (0.1, 0.2, 0.35, 0.6, 1.0)
NOISES = (1e-6, 1e-3, 1e-2, 1e-1)  # as a share of the (standardised) objectives' variance


class Space:
    """The search space of one task: probe_params' ranges and lists, mapped to and from the unit cube."""

    def __init__(self, params: SVMParams, regression: bool):
        self.C = np.log(params.C_start_end)
        self.degrees = params.kernel_degree_list
        self.gamma = None if params.kernel_gamma_start_end is None else np.log(params.kernel_gamma_start_end)
        self.coef0 = params.kernel_coef0_start_end
        self.epsilons = params.epsilon_list if regression else None
        self.dim = 2 + (self.gamma is not None) + (self.coef0 is not None) + (self.epsilons is not None)

    def candidate(self, u: np.ndarray) -> dict:
        """The point of the space at unit-cube coordinates u: (dim,), as neuco_jax.probes.svm.Candidate's keywords."""
        it = iter(u)
        C = float(np.exp(self.C[0] + next(it) * (self.C[1] - self.C[0])))
        degree = self.degrees[_index(next(it), len(self.degrees))]
        kw = {}
        if self.gamma is not None:
            kw["gamma"] = float(np.exp(self.gamma[0] + next(it) * (self.gamma[1] - self.gamma[0])))
        if self.coef0 is not None:
            kw["coef0"] = float(self.coef0[0] + next(it) * (self.coef0[1] - self.coef0[0]))
        if self.epsilons is not None:
            kw["epsilon"] = self.epsilons[_index(next(it), len(self.epsilons))]
        return {"C": C, "degree": int(degree), **kw}

    def snap(self, u: np.ndarray) -> np.ndarray:
        """u with each categorical coordinate moved to the centre of its category's cell: (..., dim)."""
        u = np.array(u, np.float64)
        cats = [(1, len(self.degrees))]
        if self.epsilons is not None:
            cats.append((self.dim - 1, len(self.epsilons)))
        for axis, k in cats:
            u[..., axis] = (_index(u[..., axis], k) + 0.5) / k
        return u


def _index(u, k: int):
    """The category of unit coordinate(s) u among k equal cells."""
    return np.minimum(np.floor(np.asarray(u) * k), k - 1).astype(int)


def latin_hypercube(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """n points in [0, 1)^dim, one in each of n equal slices of every coordinate: (n, dim)."""
    slices = np.stack([rng.permutation(n) for _ in range(dim)], axis=1)
    return (slices + rng.random((n, dim))) / n


def _matern52(a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray:
    r = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0)) * math.sqrt(5) / length
    return (1 + r + r * r / 3) * np.exp(-r)


class _GP:
    """A zero-mean GP on standardised objectives; hyperparameters by the grid's best marginal likelihood."""

    def __init__(self, u: np.ndarray, y: np.ndarray):
        self.u = u
        self.shift, self.scale = y.mean(), y.std() if y.std() > 0 else 1.0
        t = (y - self.shift) / self.scale
        best = -np.inf
        for length in LENGTH_SCALES:
            k = _matern52(u, u, length)
            for noise in NOISES:
                chol = np.linalg.cholesky(k + noise * np.eye(len(u)))
                coef = np.linalg.solve(chol.T, np.linalg.solve(chol, t))
                evidence = -0.5 * t @ coef - np.log(np.diag(chol)).sum()
                if evidence > best:
                    best, self.length, self.chol, self.coef = evidence, length, chol, coef

    def predict(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation at points v: (m, dim), in the objectives' units."""
        k = _matern52(v, self.u, self.length)
        mean = k @ self.coef
        half = np.linalg.solve(self.chol, k.T)
        var = np.maximum(1.0 - (half * half).sum(0), 1e-12)
        return self.shift + self.scale * mean, self.scale * np.sqrt(var)


def _expected_improvement(mean, sd, best):
    z = (mean - best) / sd
    return (mean - best) * ndtr(z) + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def propose(space: Space, u: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n new points in the unit cube, by expected improvement over the objectives y seen at u.

    Args:
      u: (seen, dim) unit-cube coordinates (snapped); y: (seen,) objectives, larger is better, finite.
    Returns:
      (n, dim) snapped coordinates.
    """
    u, y = np.array(u), np.array(y, np.float64)
    picks = []
    for _ in range(n):
        gp = _GP(u, y)
        top = u[np.argsort(-y)[:4]]
        local = top[rng.integers(len(top), size=LOCAL)] + 0.05 * rng.standard_normal((LOCAL, space.dim))
        pool = space.snap(np.clip(np.concatenate([rng.random((POOL, space.dim)), local]), 0.0, 1.0 - 1e-12))
        mean, sd = gp.predict(pool)
        pick = pool[np.argmax(_expected_improvement(mean, sd, y.max()))]
        picks.append(pick)
        u = np.concatenate([u, pick[None]])
        y = np.append(y, gp.predict(pick[None])[0])  # believe the mean until the round is fitted
    return np.array(picks)


def search(params: SVMParams, regression: bool, seed: int,
           evaluate: Callable[[list], np.ndarray]) -> list:
    """Spend the budget of `params.n_iter` candidates in rounds (see the module docstring).

    Args:
      params: the search space and budget (n_iter, n_initial_points, n_points).
      regression: epsilon is searched for SVR only.
      seed: the search's random seed (opt_params.random_state, else the config's seed).
      evaluate: fits a round's candidates (a list of Candidate keywords) on every fold and returns their objectives (mean
        'scoring' over folds; NaN where no fold converged), (len(round),).

    Returns:
      Every candidate evaluated (Candidate keywords), in order (the order of the concatenated objectives).
    """
    space = Space(params, regression)
    rng = np.random.default_rng(seed)
    u = space.snap(latin_hypercube(params.n_initial_points, space.dim, rng))
    seen_u, seen_y, candidates = [], [], []
    while True:
        batch = [space.candidate(p) for p in u]
        candidates += batch
        seen_u.append(u)
        seen_y.append(np.asarray(evaluate(batch), np.float64))
        left = params.n_iter - len(candidates)
        if left <= 0:
            return candidates
        y = np.concatenate(seen_y)
        floor = np.nanmin(y) if np.isfinite(y).any() else 0.0
        u = propose(space, np.concatenate(seen_u), np.where(np.isfinite(y), y, floor), min(params.n_points, left),
                    rng)
