"""Per-sample error analysis: join saved test predictions with what the sample looked like."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nextloc.data import UNSEEN, Split
from nextloc.paths import RESULTS_DIR
from nextloc.readable import percent

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
        for run in sorted((RESULTS_DIR / "runs" / experiment).glob("seed_*")):
            predictions = pd.read_csv(run / "test_predictions.csv.gz")
            if not np.array_equal(predictions["staypoint_id"], features["staypoint_id"]):
                raise ValueError(f"{run}: predictions do not match the test split's samples")
            parts.append(features.assign(
                experiment=experiment, seed=int(run.name.removeprefix("seed_")),
                run=f"{experiment}/{run.name}", correct=(predictions["rank"] == 1).to_numpy()))
    if not parts:
        raise FileNotFoundError(f"no saved runs of {experiments} under {RESULTS_DIR / 'runs'}; "
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
    ``full``'s variants named by what they change) and per kind of target (columns, each with its share of the test samples)."""
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
             for run in sorted((RESULTS_DIR / "runs" / experiment).glob("seed_*"))
             if (run / "history.csv").is_file()]
    if not parts:
        raise FileNotFoundError(f"no saved runs of {experiments} under {RESULTS_DIR / 'runs'}; "
                                f"run `nextloc run {' '.join(experiments)}` first")
    return pd.concat(parts, ignore_index=True)


def correct_by_seed(experiment: str) -> pd.DataFrame:
    """Whether each test sample was ranked first (rows, in the split's order), one column per
    seed of ``experiment``; empty when it has no saved predictions."""
    columns = {int(run.name.removeprefix("seed_")):
               (pd.read_csv(run / "test_predictions.csv.gz")["rank"] == 1).to_numpy()
               for run in sorted((RESULTS_DIR / "runs" / experiment).glob("seed_*"))
               if (run / "test_predictions.csv.gz").is_file()}
    return pd.DataFrame(columns)


def predicts_unseen(experiment: str) -> bool:
    """Whether any run of ``experiment`` ranks the unseen-location class first for some test
    sample."""
    return any((pd.read_csv(run / "test_predictions.csv.gz")["top1"] == UNSEEN).any()
               for run in (RESULTS_DIR / "runs" / experiment).glob("seed_*"))


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


def trained_pointer(data, quick: bool, seed: int = 42):
    """The ``pointer`` experiment's model for ``seed``: loaded from its checkpoint when this
    machine has one (``runs/``), trained here otherwise with the experiment's settings (quick
    mode: two short epochs). Returns (model, what happened)."""
    from nextloc.models.checkpoint import load_checkpoint
    from nextloc.paths import checkpoint_path
    from nextloc.registry import run_settings, train_config
    from nextloc.train import train

    path = checkpoint_path("pointer", seed, quick)
    if path.is_file():
        model, _ = load_checkpoint(path, device="cpu")
        return model, f"loaded from its checkpoint {path.name}"
    config = train_config(run_settings("pointer", seed, quick), seed=seed, device="cpu",
                          num_threads=1)
    result = train(config, data, checkpoint=path, progress=False)
    model, _ = load_checkpoint(path, device="cpu")
    return model, f"trained here, epoch {result.best_epoch} kept by early stopping"


def pointer_internals(model, split, batch_size: int = 256) -> tuple[np.ndarray, list[np.ndarray]]:
    """The copy gate g (the weight of copying from the history) and the attention over the
    history steps, per sample, read from a trained ``pointer`` model with forward hooks (the
    model itself only returns the mixed distribution)."""
    import torch

    from nextloc.train import predict_scores

    if not model.copy:
        raise ValueError("a pointer model without its copy path has no attention to read")
    captured = {}
    names = ["key", "query", "gate"] + (["recency_bias"] if "recency" in model.features else [])
    hooks = [getattr(model, name).register_forward_hook(
        lambda module, inputs, output, name=name: captured.__setitem__(name, output))
        for name in names]
    gates, attention = [], []
    try:
        for batch, _ in predict_scores(model, split, torch.device("cpu"), batch_size):
            keys, query = captured["key"], captured["query"]
            scores = (keys @ query[:, :, None])[..., 0] / keys.shape[-1] ** 0.5
            if "recency_bias" in captured:
                scores = scores + captured["recency_bias"][..., 0]
            weights = torch.softmax(scores.masked_fill(~batch["mask"], -1e9), dim=1)
            gates.append(torch.sigmoid(captured["gate"])[:, 0].numpy() if model.generate
                         else np.ones(len(weights), dtype=np.float32))
            attention += [w[:n].numpy() for w, n in zip(weights, batch["length"])]
    finally:
        for hook in hooks:
            hook.remove()
    return np.concatenate(gates), attention


def target_type(features: pd.DataFrame) -> pd.Series:
    """'unseen place' (class 1), 'known place in the history', or 'known place, not in the
    history', per sample of :func:`sample_features`."""
    return pd.Series(np.where(features["unseen"], "unseen place",
                              np.where(features["in_history"], "known place in the history",
                                       "known place, not in the history")),
                     index=features.index)
