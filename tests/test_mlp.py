"""The MLP probe (`probe_type: mlp`) against a plain float64 numpy loop, on signal it alone can see, on noise,
through the pipeline (ablations, stored probes, result files) and on bad input."""

import functools
import json

import jax
import numpy as np
import pytest
from conftest import EPS32
from scipy.special import erf, expit
from test_bad_input import cli_error
from test_engine import decision_margin, reference_score
from test_selection import _noise_files

from neuco_jax.config import config_from_dict
from neuco_jax.data import load_labels, load_submission, prepare
from neuco_jax.pipeline import evaluate
from neuco_jax.plan import make_plan, stack_embeddings
from neuco_jax.probes import load_probe, mlp
from neuco_jax.stores import write_embeddings

# A: gelu, per-fold orders, the reference's selection, stored probes; on XOR-like data.
CONFIG_A = {"k_folds": 3, "probe_type": "mlp", "store_probes": True,
            "probe_params": {"hidden_dims": [24], "epochs": 4, "batch_size": 16, "learning_rate": 0.01}}
# B: relu, two hidden layers, dropout, shared shuffle, nested selection and every ablation axis.
CONFIG_B = {"k_folds": 3, "probe_type": "mlp", "shuffle": "shared", "selection": "nested",
            "probe_params": {"hidden_dims": [10, 6], "activation": "relu", "dropout": 0.25, "epochs": 3,
                             "batch_size": 16, "learning_rate": 0.01},
            "ablations": {"learning_rates": [0.01, 0.004], "label_fractions": [1.0, 0.5], "epochs": [2, 3]}}


def xor_files(folder, n=480, dim=5, seed=0):
    """Labels that are XOR-like in the first two dimensions (no linear signal) and three noise dimensions."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:032x}" for i in range(n)], dtype=object)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    labels = folder / "labels"
    labels.mkdir()
    for name, y in (("xor_cls__classification", (x[:, 0] * x[:, 1] > 0).astype(int)),
                    ("xor_reg__regression", x[:, 0] * x[:, 1])):
        (labels / f"{name}.csv").write_text("id,label\n" + "".join(f"{i},{v!r}\n" for i, v in zip(ids, y.tolist())))
    write_embeddings(folder / "xor.npz", ids, x)
    return folder / "xor.npz", labels


def uneven_files(folder, n=160, dim=12, seed=0):
    """Two tasks of different sizes on one embedding (so entries are padded): a regression of 150 rows and
    a classification of 83, both from one direction of the embedding plus noise."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:032x}" for i in range(n)], dtype=object)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    signal = x @ rng.normal(size=dim)
    labels = folder / "labels"
    labels.mkdir()
    for name, rows, y in (("biomass_mean__regression", slice(0, 150), signal + 0.5 * rng.normal(size=n)),
                          ("random_cls__classification", slice(70, 153), (signal > 0.3).astype(int))):
        (labels / f"{name}.csv").write_text(
            "id,label\n" + "".join(f"{i},{v!r}\n" for i, v in zip(ids[rows], y[rows].tolist())))
    write_embeddings(folder / "uneven.npz", ids, x)
    return folder / "uneven.npz", labels


def bench_of(submission, labels):
    """The Prepared submission the pipeline builds from the files (its default standardisation and label scaling)."""
    tasks = load_labels(labels)
    ids, x = load_submission(submission, valid_ids={i for t in tasks for i in t.ids})
    return prepare(tasks, ids, x)


# ---------------------------------------------------------------- the independent float64 loop


def gelu(a):
    return 0.5 * a * (1.0 + erf(a / np.sqrt(2.0)))


def gelu_grad(a):
    return 0.5 * (1.0 + erf(a / np.sqrt(2.0))) + a * np.exp(-0.5 * a * a) / np.sqrt(2.0 * np.pi)


ACT = {"gelu": (gelu, gelu_grad), "relu": (lambda a: np.maximum(a, 0.0), lambda a: (a > 0).astype(float))}


# The program's draws, compiled once per shape (eager, every operation would compile on its own).
initial_params = jax.jit(mlp.initial_params, static_argnums=(1, 3, 4))
dropout_multipliers = jax.jit(mlp.dropout_multipliers, static_argnums=(3, 4, 5, 6))


@functools.cache
def _start(seed, name, k, own_dim, width, hidden_dims):
    """The program's initial parameters of every fold of a task (mlp.initial_params), on the host."""
    init_key, _ = mlp.task_keys(np.uint32(seed), np.uint32(mlp.task_crc(name)))
    return jax.device_get(initial_params(init_key, k, own_dim, width, hidden_dims))["params"]


@functools.cache
def _keep(seed, name, k, batch, hidden_dims, rate, epoch, step):
    """The program's dropout multipliers of every fold for one minibatch of a task, on the host."""
    _, dropout_key = mlp.task_keys(np.uint32(seed), np.uint32(mlp.task_crc(name)))
    return jax.device_get(dropout_multipliers(dropout_key, epoch, step, k, batch, hidden_dims, rate))


def reference_probe(plan, emb, e, g, config):
    """Probe g of entry e (a plan probe, not a nested twin) trained as torch would train the MLP, in float64.

    The initial parameters, dropout multipliers and minibatch orders are the program's own draws
    (mlp.initial_params, mlp.dropout_multipliers, plan.visits); everything else is written here: the
    forward and backward passes, the mean BCE-with-logits / squared error, torch.optim.AdamW's update
    with float64 bias corrections, and the held-out scores (test_engine.reference_score).

    Returns per epoch: "test" and (nested) "val": (score, mean loss, logits, labels, steps taken);
    "train": per minibatch (loss, logits, labels, steps taken); "kink": per step (steps taken, smallest
    |pre-activation| of the minibatch).
    """
    hp, k = config.mlp, plan.k_folds
    act, act_grad = ACT[hp.activation]
    p = e * plan.group + g
    name, _ = plan.entries[e]
    fold = g % k
    x, rows, y = emb.x[0].astype(np.float64), emb.sample_row[0], plan.y.astype(np.float64)
    start = _start(config.seed, name, k, int(emb.dims[0]), emb.x.shape[2], hp.hidden_dims)
    layers = [[np.asarray(start[f"layer_{i}"][w][fold], np.float64) for w in ("kernel", "bias")]
              for i in range(len(start))]
    m = [[np.zeros_like(a) for a in layer] for layer in layers]
    v = [[np.zeros_like(a) for a in layer] for layer in layers]
    lr, cls, t = float(plan.lr[p]), bool(plan.is_cls[p]), 0
    b1, b2, eps = 0.9, 0.999, 1e-8

    def forward(xb, keep=None):
        hs, pre = [xb], []
        for i, (w, b) in enumerate(layers[:-1]):
            pre.append(hs[-1] @ w + b)
            hs.append(act(pre[-1]) * (1.0 if keep is None else keep[i]))
        return hs, pre, hs[-1] @ layers[-1][0][:, 0] + layers[-1][1][0]

    def loss_of(z, yb):
        return np.logaddexp(0.0, z) - z * yb if cls else (z - yb) ** 2

    def heldout(q):
        pos = plan.test[q, :plan.n_test[q]]
        z = forward(x[rows[pos]])[2]
        return reference_score(z, y[pos], cls, plan.metric_rule), loss_of(z, y[pos]).mean(), z, y[pos], t

    out = {"test": [], "val": [], "train": [], "kink": []}
    for epoch in range(plan.epochs):
        order, train = plan.visits(p, epoch), []
        for s, first in enumerate(range(0, len(order), plan.batch_size)):
            idx = order[first:first + plan.batch_size]
            keep = None
            if hp.dropout:
                keep = [np.asarray(d[fold, :len(idx)], np.float64) for d in _keep(
                    config.seed, name, k, plan.batch_size, hp.hidden_dims, hp.dropout, epoch, s)]
            hs, pre, z = forward(x[rows[idx]], keep)
            out["kink"].append((t, min(np.abs(a).min() for a in pre)))
            train.append((loss_of(z, y[idx]).mean(), z, y[idx], t))
            dz = ((expit(z) if cls else 2.0 * z) - (1.0 if cls else 2.0) * y[idx]) / len(idx)
            grads, delta = [], dz[:, None]
            for i in range(len(layers) - 1, -1, -1):
                grads.append([hs[i].T @ delta, delta.sum(0)])
                if i:
                    delta = (delta @ layers[i][0].T) * act_grad(pre[i - 1]) * (1.0 if keep is None else keep[i - 1])
            t += 1
            for layer, grad, mm, vv in zip(layers, grads[::-1], m, v):
                for j in range(2):  # torch.optim.AdamW: decay first, then the Adam step
                    layer[j] = layer[j] * (1 - lr * hp.weight_decay)
                    mm[j] = b1 * mm[j] + (1 - b1) * grad[j]
                    vv[j] = b2 * vv[j] + (1 - b2) * grad[j] ** 2
                    layer[j] = layer[j] - lr * (mm[j] / (1 - b1**t)) / (np.sqrt(vv[j] / (1 - b2**t)) + eps)
        out["train"].append(train)
        out["test"].append(heldout(p))
        if plan.selection == "nested":
            out["val"].append(heldout(p + plan.group // 2))
    return out


def float32_bounds(z, y, t, cls, n_layers, metric_rule):
    """How far the float32 program's score and mean loss of logits z (float64, after t steps) may lie off.

    A minibatch step runs every layer's product forward and back, each rounding by a few ulps, so a
    step moves the parameters about 2 x layers x EPS32 relatively from the float64 ones; AdamW's
    update is scale-free (it does not grow such an error with the gradient) and these probes learn,
    so steps add their errors (conftest.score_tolerance's model: the linear probe's one product each
    way). A logit is then within delta = 2 x layers x (t + 1) x EPS32 x (1 + |z|) (t steps and the
    forward pass), and R^2 within (sum 2 |r| delta + delta^2) / SS_tot plus the float32 rounding
    of its sums ((n + 2) EPS32 relative), a mean squared error within the mean of 2 |r| delta + delta^2,
    a BCE (1-Lipschitz in z) within mean delta; F1 only moves (beyond a division's rounding) where a
    logit lies within delta of its threshold (test_engine.decision_margin): then any move is allowed.

    Returns (score bound, loss bound, delta).
    """
    delta = 2 * n_layers * (t + 1) * EPS32 * (1 + np.abs(z))
    n = len(z)
    if cls:
        score = 2 * EPS32 if decision_margin(z, y, True, metric_rule) > delta.max() else np.inf
        return score, delta.mean() + (n + 1) * EPS32 * np.mean(np.abs(z) + 1), delta
    spread = 2 * np.abs(z - y) * delta + delta**2
    ss_res, ss_tot = np.sum((z - y) ** 2), np.sum((y - y.mean()) ** 2)
    return (spread.sum() / ss_tot + (n + 2) * EPS32 * max(1.0, ss_res / ss_tot), spread.mean()
            + (n + 1) * EPS32 * ss_res / n, delta)


def kinked(ref, hp) -> bool:
    """Whether a ReLU pre-activation of the reference came within float32 reach of the kink (float32_bounds's
    delta of a value near 0 after t steps): float32 may then have taken the other branch."""
    layers = len(hp.hidden_dims) + 1
    return hp.activation == "relu" and any(a <= 2 * layers * (t + 1) * EPS32 for t, a in ref["kink"])


# ---------------------------------------------------------------- fixtures: one program per config


class Run:
    """One config's files, its Prepared and plan (as run_pass draws it), the program's ProbeScores and
    every probe's float64 reference (keyed (entry, probe))."""

    def __init__(self, folder, files, raw):
        self.submission, self.labels = files(folder)
        self.config = config_from_dict(raw)
        self.bench = bench_of(self.submission, self.labels)
        a = self.config.ablations
        self.plan = make_plan(self.bench, k_folds=self.config.k_folds, epochs=self.config.epochs,
                              batch_size=self.config.batch_size,
                              learning_rates=a.learning_rates or (self.config.learning_rate,),
                              label_fractions=a.label_fractions or (1.0,), seed=self.config.seed,
                              shuffle=self.config.shuffle, selection=self.config.selection)
        self.emb = stack_embeddings([self.bench])
        self.got = mlp.run_plan(self.plan, self.emb, self.config)
        trained = self.plan.group // (2 if self.config.selection == "nested" else 1)
        self.refs = {(e, g): reference_probe(self.plan, self.emb, e, g, self.config)
                     for e in range(len(self.plan.entries)) for g in range(trained)}


@pytest.fixture(scope="module")
def xor(tmp_path_factory):
    return Run(tmp_path_factory.mktemp("xor"), xor_files, CONFIG_A)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    # An entry's 6 probes (2 learning rates x 3 folds) trained 4 at a time: two chunks, the second padded
    # with copies of the entry's first probe, each through all its epochs before the next.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlp, "probe_chunk", lambda params, width, n_probes, platform: min(4, n_probes))
        return Run(tmp_path_factory.mktemp("toy"), uneven_files, CONFIG_B)


def test_a_cpu_trains_probes_in_cache_sized_chunks():
    """The demo's shape (1,024 inputs, [256]: 4.2 MB of state per probe) goes two at a time on a CPU, all at once
    elsewhere; a small MLP's whole entry fits at once."""
    big = config_from_dict({"k_folds": 40, "probe_type": "mlp", "probe_params": {"hidden_dims": [256]}}).mlp
    assert mlp.probe_chunk(big, 1024, 40, "cpu") == 2
    assert mlp.probe_chunk(big, 1024, 40, "gpu") == 40
    assert mlp.probe_chunk(config_from_dict(CONFIG_B).mlp, 12, 6, "cpu") == 6


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("run", ["xor", "toy"])
def test_every_probe_trains_and_scores_as_the_float64_loop(run, request):
    """Config A (gelu, per-fold orders) and B (relu, two layers, dropout, shared shuffle, nested, two
    learning rates and label fractions): every epoch's held-out (and validation) score and loss, the
    training loss and the best epoch's held-out logits, within float32_bounds."""
    r = request.getfixturevalue(run)
    plan, hp = r.plan, r.config.mlp
    layers = len(hp.hidden_dims) + 1
    compared = 0
    for (e, g), ref in r.refs.items():
        p = e * plan.group + g
        cls = bool(plan.is_cls[p])
        if kinked(ref, hp):
            continue
        compared += 1
        sets = [("test", p)] + ([("val", p + plan.group // 2)] if plan.selection == "nested" else [])
        for which, q in sets:
            for epoch, (score, loss, z, y, t) in enumerate(ref[which]):
                score_bound, loss_bound, _ = float32_bounds(z, y, t, cls, layers, plan.metric_rule)
                assert abs(r.got.epoch_scores[0, q, epoch] - score) <= score_bound, (which, e, g, epoch)
                assert abs(r.got.test_loss[0, q, epoch] - loss) <= loss_bound, (which, e, g, epoch)
        for epoch, minibatches in enumerate(ref["train"]):
            bound = np.mean([float32_bounds(z, y, t, cls, layers, plan.metric_rule)[1]
                             for _, z, y, t in minibatches])
            assert abs(r.got.train_loss[0, p, epoch] - np.mean([m[0] for m in minibatches])) <= bound
        # The held-out logits kept for plots are the best epoch's (compared where it is not a near tie).
        scores = [score for score, *_ in ref["test"]]
        best = int(np.argmax(scores))
        bounds = [float32_bounds(z, y, t, cls, layers, plan.metric_rule)[0] for _, _, z, y, t in ref["test"]]
        if all(scores[best] - s > bounds[best] + b for i, (s, b) in enumerate(zip(scores, bounds)) if i != best):
            _, _, z, y, t = ref["test"][best]
            delta = float32_bounds(z, y, t, cls, layers, plan.metric_rule)[2]
            np.testing.assert_array_less(np.abs(r.got.best_logits[0, p, :len(z)] - z), delta)
    assert compared >= len(r.refs) // 2, f"only {compared} of {len(r.refs)} probes stayed clear of a ReLU kink"


@pytest.fixture(scope="module")
def xor_runs(xor, tmp_path_factory):
    """config A through the pipeline (the fixture's program again, and its refit), and the linear probe alike."""
    out = tmp_path_factory.mktemp("xor_out")
    same = {k: v for k, v in CONFIG_A["probe_params"].items() if k != "hidden_dims"}
    linear = config_from_dict({**CONFIG_A, "probe_type": "linear", "store_probes": False, "probe_params": same})
    return (evaluate(xor.submission, xor.labels, xor.config, output_dir=out, phase="mlp")[0],
            evaluate(xor.submission, xor.labels, linear, output_dir=out, phase="linear")[0])


def test_the_mlp_sees_the_xor_signal_that_the_linear_probe_cannot(xor, xor_runs):
    """y = x0 x1 (and its sign as a class) has no linear signal: every MLP fold beats every linear one."""
    mlp_run, linear_run = xor_runs
    for ours, theirs in zip(mlp_run.scores, linear_run.scores):
        assert ours.name == theirs.name
        assert ours.fold_scores.min() > theirs.fold_scores.max() + 0.2, (ours.name, ours.fold_scores,
                                                                          theirs.fold_scores)
        assert ours.fold_scores.min() > 0.8  # the signal is learnt, not just less badly missed
    # The pipeline's scores are the fixture's program's (the same plan): best held-out epoch per fold.
    per_task = xor.got.best[0].reshape(len(xor.plan.entries), -1)
    for task, best in zip(mlp_run.scores, per_task):
        np.testing.assert_array_equal(task.fold_scores, best)


def test_the_result_json_records_the_mlp_hyperparameters(xor_runs):
    run = xor_runs[0]
    for task in ("xor_cls", "xor_reg"):
        result = json.loads((run.run_dir / task / f"{task}_result.json").read_text())
        assert result["hyperparamaters"] == {"epochs": 4, "learning_rate": 0.01, "batch_size": 16, "hidden_dims": [24],
                                             "activation": "gelu", "dropout": 0.0, "weight_decay": 0.01}
    summary = json.loads((run.run_dir / "results_summary.json").read_text())
    assert summary["config"]["probe_type"] == "mlp"
    assert summary["config"]["probe_params"]["hidden_dims"] == [24]


def forward_error(probe, x):
    """A bound on |flax's float32 logit - the float64 one| for standardised rows x: rounding analysis.

    Standardising in float32 moves x by EPS32 |x|; a layer's dot products of n terms and its bias
    are off by (n + 1) EPS32 times the sum of |terms| (the standard bound), plus the incoming error
    through |W|; gelu's slope is at most 1.13 and its own float32 evaluation adds 2 EPS32 |h|. The
    factor 2 covers the second-order terms these first-order ones leave out.
    """
    from scipy.special import erf

    err, h = EPS32 * np.abs(x), x
    for i, (w, b) in enumerate(zip(probe.kernels, probe.biases)):
        w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
        err = err @ np.abs(w) + (w.shape[0] + 1) * EPS32 * (np.abs(h) @ np.abs(w) + np.abs(b))
        h = h @ w + b
        if i < len(probe.kernels) - 1:
            h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
            err = 1.13 * err + 2 * EPS32 * np.abs(h)
    return 2 * err[:, 0]


def test_stored_probes_predict_as_the_refit_model(xor, xor_runs):
    """load_probe(...).predict on raw embeddings equals the refit MLP's own predictions (flax, float32)."""
    run = xor_runs[0]
    refit_plan = make_plan(xor.bench, k_folds=1, epochs=xor.config.epochs, batch_size=xor.config.batch_size,
                           learning_rates=(xor.config.learning_rate,), seed=xor.config.seed, refit=True)
    layers = mlp.run_plan(refit_plan, xor.emb, xor.config, refit=True)["params"]
    ids, raw = load_submission(xor.submission)
    model = mlp.MLP(xor.config.mlp.hidden_dims, xor.config.mlp.activation)
    for t, task in enumerate(xor.bench.tasks):
        folder = run.run_dir / task.name / "probe"
        with np.load(folder / "probe.npz", allow_pickle=False) as stored:
            assert sorted(stored.files) == ["bias_0", "bias_1", "kernel_0", "kernel_1"]
        probe = load_probe(folder)
        assert probe.probe_type == "mlp" and probe.activation == "gelu" and probe.task == task.name
        assert probe.hyperparameters["hidden_dims"] == [24] and probe.hyperparameters["refit_rows"] == len(task.ids)
        params = jax.tree.map(lambda a: a[0, t, 0], layers)
        rows = xor.bench.rows[t]
        z_model = np.asarray(model.apply({"params": params}, xor.bench.x[rows]), np.float64)
        assert np.array_equal(ids[rows], task.ids)
        z = probe.decision_function(raw[rows])
        delta = forward_error(probe, probe._standardised(raw[rows], probe.kernels[0].shape[0]))
        np.testing.assert_array_less(np.abs(z_model - z), delta)
        clear = np.abs(z) > delta
        if task.is_classification:
            np.testing.assert_array_equal(probe.predict(raw[rows])[clear], (z_model > 0)[clear])
        else:
            lo, hi = probe.label_min, probe.label_max
            raw_labels = next(t for t in load_labels(xor.labels) if t.name == task.name).labels
            assert (lo, hi) == (raw_labels.min(), raw_labels.max())
            np.testing.assert_allclose(probe.predict(raw[rows]), lo + z_model * (hi - lo),
                                       rtol=0, atol=float(delta.max() * (hi - lo)))


def test_ablation_variants_are_read_off_the_one_pass_by_the_nested_rule(toy, tmp_path):
    """Config B's 2 learning rates x 2 label fractions x 2 epoch budgets are 8 runs of one pass: each fold
    scores its held-out rows at the epoch (within the budget) whose validation score is best, as the
    float64 loop has it (where its choice is clear of float32's reach)."""
    runs = evaluate(toy.submission, toy.labels, toy.config, output_dir=tmp_path, phase="toy")
    plan, k = toy.plan, toy.plan.k_folds
    layers = len(toy.config.mlp.hidden_dims) + 1
    assert len(runs) == 8 and len({r.name for r in runs}) == 8
    compared = 0
    for run in runs:
        c = run.config
        l = toy.config.ablations.learning_rates.index(c.learning_rate)
        for task in run.scores:
            e = plan.entries.index((task.name, c.label_fraction))
            result = json.loads((run.run_dir / task.name / f"{task.name}_result.json").read_text())
            hyper = result["hyperparamaters"]
            assert hyper["epochs"] == c.epochs and hyper["learning_rate"] == c.learning_rate
            assert hyper["selection"] == "nested" and hyper["activation"] == "relu" and hyper["dropout"] == 0.25
            for j in range(k):
                ref = toy.refs[e, l * k + j]
                if kinked(ref, toy.config.mlp):
                    continue
                cls = task.task_type == "classification"
                val = [(s, float32_bounds(z, y, t, cls, layers, plan.metric_rule)[0]) for s, _, z, y, t in
                       ref["val"][:c.epochs]]
                chosen = int(np.argmax([s for s, _ in val]))
                if not all(val[chosen][0] - s > val[chosen][1] + b for i, (s, b) in enumerate(val) if i != chosen):
                    continue  # a near tie on the validation split: float32 may choose the other epoch
                compared += 1
                assert hyper["selected_epochs"][j] == chosen + 1
                score, _, z, y, t = ref["test"][chosen]
                bound = float32_bounds(z, y, t, cls, layers, plan.metric_rule)[0]
                assert abs(task.fold_scores[j] - score) <= bound
    assert compared >= 8 * 2 * k // 2


def test_nested_selection_shows_no_skill_on_noise(tmp_path):
    submission, labels = _noise_files(tmp_path)
    config = config_from_dict({"k_folds": 20, "probe_type": "mlp", "selection": "nested", "normalize_labels": False,
                               "probe_params": {"hidden_dims": [16], "epochs": 10, "learning_rate": 0.01,
                                                "batch_size": 32}})
    run, = evaluate(submission, labels, config, output_dir=tmp_path / "out")
    scores = run.scores[0].fold_scores
    # No skill: the nested mean R^2 is not above 0 by more than two standard errors.
    assert scores.mean() <= 2 * scores.std(ddof=1) / np.sqrt(len(scores))
    summary = json.loads((run.run_dir / "results_summary.json").read_text())
    assert summary["selection_optimism"]["noise"] > 0  # the best of 10 held-out epochs beats a blind choice


def test_initial_parameters_are_torchs_and_do_not_depend_on_the_sweep_width():
    key, _ = mlp.task_keys(np.uint32(42), np.uint32(mlp.task_crc("some_task")))
    own, wide = (jax.device_get(initial_params(key, 4, 6, width, (8, 3)))["params"] for width in (6, 11))
    np.testing.assert_array_equal(wide["layer_0"]["kernel"][:, :6], own["layer_0"]["kernel"])
    assert not wide["layer_0"]["kernel"][:, 6:].any()  # padding columns of the embedding
    for name, fan_in in (("layer_0", 6), ("layer_1", 8), ("layer_2", 3)):
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(wide[name][leaf][:, :fan_in] if (name, leaf) == ("layer_0", "kernel")
                                          else wide[name][leaf], own[name][leaf])
            assert np.abs(own[name][leaf]).max() <= 1 / np.sqrt(fan_in)  # torch nn.Linear: uniform(+-1/sqrt(fan_in))
            assert np.abs(own[name][leaf]).max() > 0.8 / np.sqrt(fan_in)
        assert len({own[name]["kernel"][f].tobytes() for f in range(4)}) == 4  # every fold its own start


@pytest.mark.parametrize("probe, fragments", [
    ({"hidden_dims": [8], "hidden": [8]}, ["'probe_params.hidden'", "unknown for probe_type mlp", "hidden_dims"]),
    ({"hidden_dims": []}, ["'probe_params.hidden_dims'", "got []", "non-empty list of positive integers"]),
    ({"hidden_dims": [8, 0]}, ["'probe_params.hidden_dims'", "got [8, 0]"]),
    ({"hidden_dims": [-4]}, ["'probe_params.hidden_dims'", "got [-4]"]),
    ({"hidden_dims": "wide"}, ["'probe_params.hidden_dims'", "got 'wide'"]),
    ({"activation": "tanh"}, ["'probe_params.activation'", "got 'tanh'", "gelu, relu"]),
])
def test_bad_mlp_configs_are_one_line_errors_that_write_nothing(xor, tmp_path, capsys, probe, fragments):
    config = tmp_path / "mlp.yaml"
    config.write_text(json.dumps({"k_folds": 3, "probe_type": "mlp", "probe_params": probe}))
    err = cli_error(tmp_path, capsys, xor.labels, xor.submission, config=config)
    for fragment in fragments:
        assert fragment in err, err


def test_another_learning_rate_reuses_the_compiled_program(xor):
    before = mlp.TRACE_COUNT
    plan = make_plan(xor.bench, k_folds=xor.config.k_folds, epochs=xor.config.epochs,
                     batch_size=xor.config.batch_size, learning_rates=(0.02,), seed=xor.config.seed)
    scores = mlp.run_plan(plan, xor.emb, xor.config)
    assert mlp.TRACE_COUNT == before  # learning rates are runtime values, not part of the program
    assert not np.array_equal(scores.epoch_scores, xor.got.epoch_scores)
