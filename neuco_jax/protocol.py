"""Scoring protocols: which runs of a phase may be ranked together.

A run's Q scores depend on how it was scored as much as on its embeddings, so
the leaderboard ranks runs together only when they share a protocol, read from
each run's results_summary.json:

  - the scoring keys of its recorded config, in the reference's layout:
    k_folds, probe_type, every probe_params key except device (batch_size,
    epochs and learning_rate of the linear probe; an SVM config compares its
    own search space), embedding_dim, standardize_embeddings,
    normalize_labels, seed, shuffle, label_fraction, metric_rule and selection. A key the
    config lacks means what the program does without it (Config's default,
    metric_rule "reference"), so the reference's own configs compare with
    neuco_jax's;
  - labels_fingerprint and exclude_fingerprint (neuco_jax extensions, see
    neuco_jax.data): the label files and the set of excluded ids.

Not protocol: enable_plots, update_leaderboard, output_fold_results,
store_probes and device change what is written or where it runs, not the
scores; task_filter changes which tasks exist, not any task's scores (the
standardisation is over the ids of every label file), and the ranking already
drops a run that lacks a task.

Unknown is a value of its own. A summary without a config (the reference
writes none when it was given none) has `config: not recorded`, and one
without fingerprints (the reference's, or neuco_jax's before it recorded them)
`labels_fingerprint: not recorded`. Such runs rank with each other, as the
reference ranks them, but never silently beside runs whose protocol is known:
nothing shows that they match, and comparing only the known keys would let
any run without a record into any phase.

Ablation variants differ on their axes by design: each records the protocol
keys it varies as `ablation_axes`, and keys that a compared run names there
are not compared.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from neuco_jax.config import PROBE_DEFAULTS, Config
from neuco_jax.errors import InputError

NOT_RECORDED = "not recorded"
FINGERPRINT_KEYS = ("labels_fingerprint", "exclude_fingerprint")
# Scoring keys at the top level of a recorded config, in the order messages list them.
_CONFIG_KEYS = ("k_folds", "probe_type", "embedding_dim", "standardize_embeddings", "normalize_labels",
                "seed", "shuffle", "label_fraction", "metric_rule", "selection")
# The reference's first sample config kept the probe keys at the top level.
_FLAT_PROBE_KEYS = ("batch_size", "epochs", "learning_rate")
_EXAMPLES = 2  # runs named per value in a message


class MixedProtocolsError(InputError):
    """The runs to be ranked were scored under different protocols."""


@dataclasses.dataclass(frozen=True)
class ProtocolGroups:
    """How a list of runs splits by protocol.

    ids: one short id per run, in the runs' order ("p" and 8 hex digits of a
      hash of its compared protocol): runs share an id exactly when they share
      a protocol.
    differences: one line naming each key whose value differs, with every
      value and example runs holding it; "" when all runs share a protocol.
    """

    ids: list[str]
    differences: str

    @property
    def mixed(self) -> bool:
        return bool(self.differences)


def _config_defaults() -> dict:
    """What an absent top-level config key means: Config's defaults; metric_rule "reference"."""
    fields = {f.name: f.default for f in dataclasses.fields(Config) if f.default is not dataclasses.MISSING}
    return {"metric_rule": "reference", **fields}


def _text(value) -> str:
    """A recorded value as comparable text: 40 and 40.0 read the same, strings bare, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True)


def protocol_of(summary: dict) -> dict[str, str]:
    """The protocol of one run, {key: value as text}, from its parsed results_summary.json."""
    config = summary.get("config")
    protocol = {}
    if isinstance(config, dict):
        defaults = _config_defaults()
        protocol["config"] = "recorded"
        for key in _CONFIG_KEYS:
            protocol[key] = _text(config[key]) if key in config else _text(defaults.get(key, NOT_RECORDED))
        probe = config.get("probe_params")
        if not isinstance(probe, dict):
            probe = {k: config[k] for k in _FLAT_PROBE_KEYS if k in config}
        probe_defaults = PROBE_DEFAULTS if config.get("probe_type", "linear") == "linear" else {}
        for key in sorted((set(probe) | set(probe_defaults)) - {"device"}):
            protocol[f"probe_params.{key}"] = _text(probe.get(key, probe_defaults.get(key)))
    else:
        protocol["config"] = NOT_RECORDED
    for key in FINGERPRINT_KEYS:
        value = summary.get(key, NOT_RECORDED)
        protocol[key] = "none" if value is None else _text(value)  # null: no exclude file
    return protocol


def group_protocols(runs) -> ProtocolGroups:
    """Splits runs by protocol.

    Args:
      runs: dicts with experiment (str), protocol (from protocol_of) and
        ablation_axes (protocol keys the run varies by design), as
        neuco_jax.leaderboard.read_runs gives them.

    Returns:
      ProtocolGroups. Keys named in any run's ablation_axes are left out of
      the comparison.
    """
    exempt = set().union(*(run["ablation_axes"] for run in runs))
    compared = [{k: v for k, v in run["protocol"].items() if k not in exempt} for run in runs]
    ids = ["p" + hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:8] for p in compared]
    if len(set(ids)) <= 1:
        return ProtocolGroups(ids, "")
    # Keys in the order of a recorded config's protocol (runs with a config first).
    keys = dict.fromkeys(k for p in sorted(compared, key=lambda p: p["config"] == NOT_RECORDED) for k in p)
    parts = []
    for key in keys:
        holders = {}  # value -> experiments
        for run, p in zip(runs, compared):
            if key in p:
                holders.setdefault(p[key], []).append(run["experiment"])
            elif p["config"] != NOT_RECORDED:  # a run without a config is named under "config"
                holders.setdefault("absent", []).append(run["experiment"])
        if len(holders) > 1:
            parts.append(f"{key} = " + " / ".join(f"{_short(value)} ({_examples(names)})"
                                                  for value, names in holders.items()))
    return ProtocolGroups(ids, "; ".join(parts))


def _short(value: str) -> str:
    """A fingerprint cut to 12 hex digits for messages; other values as they are."""
    return value[:len("sha256:") + 12] if value.startswith("sha256:") else value


def _examples(names: list[str]) -> str:
    more = len(names) - _EXAMPLES
    return ", ".join(names[:_EXAMPLES]) + (f" and {more} more" if more > 0 else "")
