"""Per-sample error analysis: join saved test predictions with what the sample looked like."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nextloc.data.split import UNSEEN, Split
from nextloc.core import paths
from nextloc.report.readable import percent

LENGTH_BINS = [2, 6, 11, 16, 21, 31, 61]


def sample_features(split: Split) -> pd.DataFrame:
    """One row per sample: user, target, whether the target occurs in the history, and so on."""
    rows = np.repeat(np.arange(len(split)), split.lengths)
    in_history = np.zeros(len(split), dtype=bool)
    np.logical_or.at(in_history, rows, split.location == split.target[rows])
    return pd.DataFrame({
        "staypoint_id": split.staypoint_id, "user": split.user, "target": split.target,
        "in_history": in_history, "unseen": split.target == UNSEEN,
        "weekend": split.target_weekday >= 5,
        "length_bin": pd.cut(split.lengths, LENGTH_BINS, right=False,
                             labels=[f"{a}-{b - 1}" for a, b in zip(LENGTH_BINS, LENGTH_BINS[1:])]),
    })


def per_sample_frame(split: Split, experiments: list[str]) -> pd.DataFrame:
    """The saved test predictions of every run of ``experiments``, one row per (run, sample)."""
    features = sample_features(split)
    parts = []
    for experiment in experiments:
        for run in sorted((paths.RESULTS_DIR / "runs" / experiment).glob("seed_*")):
            predictions = pd.read_csv(run / "test_predictions.csv.gz")
            if not np.array_equal(predictions["staypoint_id"], features["staypoint_id"]):
                raise ValueError(f"{run}: predictions do not match the test split's samples")
            parts.append(features.assign(
                experiment=experiment, seed=int(run.name.removeprefix("seed_")),
                run=f"{experiment}/{run.name}", correct=(predictions["rank"] == 1).to_numpy()))
    if not parts:
        raise FileNotFoundError(f"no saved runs of {experiments} under "
                                f"{paths.RESULTS_DIR / 'runs'}; "
                                f"run `nextloc run {' '.join(experiments)}` first")
    return pd.concat(parts, ignore_index=True)


def accuracy_by(samples: pd.DataFrame, column: str) -> pd.DataFrame:
    """Acc@1 per (group, experiment), averaged over seeds, plus each group's share of samples."""
    per_seed = samples.groupby(["experiment", column, "seed"], observed=True)["correct"].mean()
    table = per_seed.groupby(["experiment", column], observed=True).mean().unstack(0)
    one_run = samples[samples["run"] == samples["run"].iloc[0]]
    table["share of samples"] = one_run[column].value_counts(normalize=True)
    return table


GROUP_NAMES = {"unseen": {False: "known place", True: "unseen class"},
               "in_history": {True: "in the 7-day history", False: "not in the history"}}


def readable_accuracy(samples: pd.DataFrame, full: str) -> pd.DataFrame:
    """Test Acc@1 in % (two decimals) per experiment (rows, in the order of ``samples``;
    ``full``'s variants named by what they change) and per kind of target (columns, each with its
    share of the test samples)."""
    parts = []
    for column, names in GROUP_NAMES.items():
        table = accuracy_by(samples, column)
        share = table.pop("share of samples")
        table = table.reindex(list(names))
        table.index = [f"{names[key]} ({percent(share[key])})" for key in names]
        parts.append(table.T.map(percent))
    out = pd.concat(parts, axis=1).reindex(pd.unique(samples["experiment"]))
    out.index = ["all parts" if name == full else name.removeprefix(full + "_")
                 for name in out.index]
    return out.rename_axis(index=full, columns="target is")


def learning_curves(experiments: list[str]) -> pd.DataFrame:
    """The per-epoch history of every saved run of ``experiments``, one row per (run, epoch)."""
    parts = [pd.read_csv(run / "history.csv").assign(
                 experiment=experiment, seed=int(run.name.removeprefix("seed_")))
             for experiment in experiments
             for run in sorted((paths.RESULTS_DIR / "runs" / experiment).glob("seed_*"))
             if (run / "history.csv").is_file()]
    if not parts:
        raise FileNotFoundError(f"no saved runs of {experiments} under "
                                f"{paths.RESULTS_DIR / 'runs'}; "
                                f"run `nextloc run {' '.join(experiments)}` first")
    return pd.concat(parts, ignore_index=True)


def correct_by_seed(experiment: str) -> pd.DataFrame:
    """Whether each test sample was ranked first (rows, in the split's order), one column per
    seed of ``experiment``; empty when it has no saved predictions."""
    columns = {int(run.name.removeprefix("seed_")):
               (pd.read_csv(run / "test_predictions.csv.gz")["rank"] == 1).to_numpy()
               for run in sorted((paths.RESULTS_DIR / "runs" / experiment).glob("seed_*"))
               if (run / "test_predictions.csv.gz").is_file()}
    return pd.DataFrame(columns)


def predicts_unseen(experiment: str) -> bool:
    """Whether any run of ``experiment`` ranks the unseen-location class first for some test
    sample."""
    return any((pd.read_csv(run / "test_predictions.csv.gz")["top1"] == UNSEEN).any()
               for run in (paths.RESULTS_DIR / "runs" / experiment).glob("seed_*"))


def gap_decomposition(val_acc1: float, unseen_val: float, unseen_test: float,
                      known_test: float, unseen_acc_test: float,
                      unseen_acc_val: float = 0.0) -> dict[str, float]:
    """Split validation minus test Acc@1 exactly into a part due to the unseen-class share and a
    part due to accuracy on each kind of target, with both periods' values averaged::

        acc = (1 - u) * a_known + u * a_unseen
        val - test = (u_test - u_val) * (mean a_known - mean a_unseen)      # more unseen targets
                     + (1 - mean u) * (a_known_val - a_known_test)          # known places
                     + mean u * (a_unseen_val - a_unseen_test)              # unseen targets

    Validation accuracy on known places is not saved per sample; it follows from the validation
    Acc@1 once the validation accuracy on unseen targets is given (0 for a model that never
    predicts that class, the only case in which the book uses this)."""
    known_val = (val_acc1 - unseen_val * unseen_acc_val) / (1 - unseen_val)
    test_acc1 = (1 - unseen_test) * known_test + unseen_test * unseen_acc_test
    mean_u = (unseen_val + unseen_test) / 2
    share = (unseen_test - unseen_val) * ((known_val + known_test) / 2
                                          - (unseen_acc_val + unseen_acc_test) / 2)
    return {"gap": val_acc1 - test_acc1, "from unseen share": share,
            "from known places": (1 - mean_u) * (known_val - known_test),
            "from unseen targets": mean_u * (unseen_acc_val - unseen_acc_test),
            "known val": known_val, "known test": known_test}


@dataclass(frozen=True)
class Provenance:
    """Where :func:`trained_pointer`'s model comes from; ``str()`` says it in one sentence."""

    experiment: str
    seed: int
    loaded: bool        # True: read from the run's checkpoint; False: trained here
    checkpoint: str     # the run's checkpoint, relative to the project root
    text: str

    def __str__(self) -> str:
        return self.text


def trained_pointer(data, quick: bool, experiment: str = "pointer",
                    seed: int | None = None):
    """A trained model of ``experiment`` (a ``pointer`` or ``pointer_ensemble``) for ``seed``
    (default: the experiment's first seed): loaded from the checkpoint its run wrote
    (``runs/<full|quick>/checkpoints/<experiment>/seed_<n>.safetensors``) when this machine has
    one, trained here otherwise with the run's settings, into a temporary folder, so that it never
    stands in for a run's checkpoint. A distillation teacher whose checkpoints are missing is left
    out. Returns (model, :class:`Provenance`), which says which of these happened."""
    import tempfile

    from nextloc.models.checkpoint import load_checkpoint
    from nextloc.core.paths import checkpoint_path
    from nextloc.experiments.registry import load_registry, run_settings, train_config
    from nextloc.training.loop import train

    seed = load_registry()["experiments"][experiment]["seeds"][0] if seed is None else seed
    mode = "quick" if quick else "full"
    path = checkpoint_path(experiment, seed, quick)
    root = paths.PROJECT_ROOT
    shown = str(path.relative_to(root) if path.is_relative_to(root) else path)
    if path.is_file():
        model, _ = load_checkpoint(path, device="cpu")
        return model, Provenance(experiment, seed, True, shown, (
            f"The model is `{experiment}`, seed {seed}, loaded from the checkpoint that its "
            f"{mode} run saved (`{shown}`)."))
    settings = run_settings(experiment, seed, quick)
    teacher = settings.get("model.teacher") or []
    missing = [t for t in teacher if not (paths.PROJECT_ROOT / t).is_file()]
    if missing:
        settings = {k: v for k, v in settings.items()
                    if k not in ("model.teacher", "model.distill")}
    config = train_config(settings, seed=seed, device="cpu", num_threads=1)
    with tempfile.TemporaryDirectory() as folder:
        result = train(config, data, checkpoint=Path(folder) / "model.safetensors",
                       progress=False, evaluate_test=False)
        model, _ = load_checkpoint(Path(folder) / "model.safetensors", device="cpu")
    how = (f"in quick mode: {config.epochs} epochs of at most {config.max_batches} batches"
           if quick else f"epoch {result.best_epoch} kept by early stopping")
    without = (f", without its distillation teacher ({len(missing)} of its {len(teacher)} "
               f"checkpoints are not on this machine)" if missing else "")
    return model, Provenance(experiment, seed, False, shown, (
        f"The model is `{experiment}`, seed {seed}, trained on this page with that run's "
        f"settings ({how}){without}, because this machine has no checkpoint of the run "
        f"(`{shown}`): it is not the run the report records."))


def _members(model) -> list:
    """The pointer models whose probabilities ``model`` averages (itself, if it is one)."""
    return list(model.members) if hasattr(model, "members") else [model]


def mixture_parts(model, batch) -> dict:
    """The copied and generated parts of a ``pointer`` model's probabilities, or of a
    ``pointer_ensemble``'s (the mean over its members), for one batch:

    - ``copied``, ``generated`` [B, N]: their sum is the model's probability of each place;
    - ``gate`` [B]: the share of the probability that came from copying the history (the copy
      gate g; an ensemble's is the mean of its members' gates);
    - ``attention`` [B, L]: how that copied share spreads over the history steps (sums to 1
      where the gate is above 0), so that ``copied[l] = gate * sum_{j: loc_j = l} attention_j``.
    """
    import torch

    members = _members(model)
    size, length = batch["location"].shape
    with torch.inference_mode():
        copied = torch.zeros(size, model.num_locations)
        generated, steps = torch.zeros_like(copied), torch.zeros(size, length)
        gates = torch.zeros(size, 1)
        for member in members:
            parts = member.mixture(batch)
            gate = parts.get("gate", torch.full((size, 1), float(member.copy)))
            if member.copy:
                copied += gate * parts["copy"]
                steps += gate * parts["attention"]
            if member.generate:
                generated += (1 - gate) * parts["generate"]
            gates += gate
    attention = steps / gates.clamp(min=1e-12)
    return {"copied": copied / len(members), "generated": generated / len(members),
            "gate": gates[:, 0] / len(members), "attention": attention}


def pointer_internals(model, split, batch_size: int = 256) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per sample of ``split``: the copy gate (the share of the probability that came from
    copying) and the attention over the history steps, of a ``pointer`` model or a
    ``pointer_ensemble`` (see :func:`mixture_parts`; the models return only the mixture)."""
    from nextloc.data.batching import batches

    if not any(member.copy for member in _members(model)):
        raise ValueError("a pointer model without its copy path has no attention to read")
    model.eval()
    gates, attention = [], []
    for batch in batches(split, batch_size):
        parts = mixture_parts(model, batch)
        gates.append(parts["gate"].numpy())
        attention += [w[:n].numpy() for w, n in zip(parts["attention"], batch["length"])]
    return np.concatenate(gates), attention


def target_type(features: pd.DataFrame) -> pd.Series:
    """'unseen place' (class 1), 'known place in the history', or 'known place, not in the
    history', per sample of :func:`sample_features`."""
    return pd.Series(np.where(features["unseen"], "unseen place",
                              np.where(features["in_history"], "known place in the history",
                                       "known place, not in the history")),
                     index=features.index)
