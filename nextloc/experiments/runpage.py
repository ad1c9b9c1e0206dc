"""What a run page (``notebooks/train.ipynb``, executed per run) shows, read from the files the
run saved: what kind of run it was, its metrics, and its learning curves where it had any.

Run ``python -m nextloc.experiments.runpage [EXPERIMENT ...]`` to re-render the pages of finished
runs from their saved files, without training again (the template's ``train=False``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

METRIC_NAMES = {"acc1": "Acc@1 %", "acc5": "Acc@5 %", "acc10": "Acc@10 %", "mrr": "MRR %",
                "ndcg10": "NDCG@10 %", "f1": "weighted F1 %"}


def load_run(out_dir: Path) -> tuple[dict, dict, pd.DataFrame]:
    """(metrics.json, config.json, history.csv) of one run folder."""
    saved = json.loads((out_dir / "metrics.json").read_text())
    config = json.loads((out_dir / "config.json").read_text())
    history = pd.read_csv(out_dir / "history.csv")
    return saved, config, history


def run_kind(saved: dict, config: dict, history: pd.DataFrame) -> str:
    if config.get("refit") and history.empty and "members" not in config.get("model_options", {}):
        return "refit rule"  # a counting rule counted on training + validation: no epochs
    if config.get("refit"):
        return "refit"
    if "members" in config.get("model_options", {}):
        return "combined"
    if history.empty:
        return "rule"
    return "early-stopped"


def describe(saved: dict, config: dict, history: pd.DataFrame, epochs_from: str | None = None) -> str:
    """One paragraph (markdown) saying how this run was made and what validation did in it."""
    kind = run_kind(saved, config, history)
    if kind == "rule":
        return ("**A counting rule, no training.** It reads counts from the training split; there "
                "are no epochs, no learning curves and no choice made on validation. Validation "
                "and test were each evaluated once, for the record.")
    if kind == "refit rule":
        return ("**A counting rule, no training, protocol B.** It reads counts from the training "
                "and validation splits; there are no epochs and no learning curves. Test was "
                "evaluated once.")
    if kind == "combined":
        members = ", ".join(f"`{Path(m).parent.name}/{Path(m).stem}`"
                            for m in config["model_options"]["members"])
        samples = config["model_options"].get("samples")
        how = (f"one saved run ({members}) with dropout left on at test time, {samples} passes "
               f"averaged" if samples else f"the probabilities of saved runs averaged ({members})")
        return (f"**No training: {how}.** The members were loaded from their checkpoints, so "
                f"there are no epochs and no learning curves; nothing was chosen on validation, "
                f"which was evaluated once for the record, like test.")
    if kind == "refit":
        source = f" (the median epoch early stopping chose in `{epochs_from}`)" if epochs_from else ""
        return (f"**Refit on train + validation (protocol B)** for exactly {config['epochs']} "
                f"epochs{source}. There is no validation selection and no validation score: "
                f"validation is part of the training data here. The final weights were "
                f"evaluated once on test.")
    return (f"**Trained on the training split (protocol A)**, at most {config['epochs']} epochs. "
            f"Early stopping on validation Acc@1 (patience {config['patience']}) kept epoch "
            f"{saved['best_epoch']}; the weights of that epoch were evaluated once on test.")


def settings(saved: dict, config: dict, history: pd.DataFrame) -> dict:
    """The saved configuration, without the training settings of a run that did not train."""
    if run_kind(saved, config, history) in {"rule", "refit rule", "combined"}:
        return {key: config[key] for key in ("model", "model_options", "seed") if key in config}
    return config


def cost_line(saved: dict, config: dict, history: pd.DataFrame) -> str:
    kind = run_kind(saved, config, history)
    work = ("no training" if kind in {"rule", "refit rule", "combined"} else
            f"{saved['train_seconds']:.0f} s of training on {saved['device']}")
    return f"{saved['n_params']:,} parameters, {work}"


def metrics_table(saved: dict, config: dict) -> pd.DataFrame:
    """Validation and test metrics in %, the sample counts as integers; no validation column for
    a refit."""
    splits = {"test": saved["test"]} if config.get("refit") else {
        "validation": saved["val"], "test": saved["test"]}
    table = pd.DataFrame({name: {label: f"{100 * values[key]:.2f}"
                                 for key, label in METRIC_NAMES.items()}
                          for name, values in splits.items()})
    counts = pd.DataFrame({name: {"samples": f"{int(values['n']):,}"}
                           for name, values in splits.items()})
    return pd.concat([table, counts])


def plot_history(saved: dict, config: dict, history: pd.DataFrame):
    """Training loss, and validation Acc@1/@5 with the kept epoch for early-stopped runs; None
    for runs without epochs."""
    kind = run_kind(saved, config, history)
    if kind in {"rule", "refit rule", "combined"}:
        return None
    panels = 1 if kind == "refit" else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.4), squeeze=False)
    axes[0, 0].plot(history["epoch"], history["train_loss"], marker=".")
    axes[0, 0].set(xlabel="epoch", ylabel="training loss",
                   title="refit: no validation curve" if kind == "refit" else "")
    if kind == "early-stopped":
        ax = axes[0, 1]
        ax.plot(history["epoch"], 100 * history["val_acc1"], marker=".", label="Acc@1")
        ax.plot(history["epoch"], 100 * history["val_acc5"], marker=".", label="Acc@5")
        ax.axvline(saved["best_epoch"], color="grey", linestyle="--", label="epoch kept")
        ax.set(xlabel="epoch", ylabel="validation %")
        ax.legend()
    fig.tight_layout()
    return fig


def training_metadata(page: Path) -> dict | None:
    """When and how long the run that trained (papermill's record in its page), kept when the
    page is re-rendered so that the run's own timing is not lost."""
    if not page.is_file():
        return None
    metadata = json.loads(page.read_text())["metadata"]
    if "nextloc" in metadata:
        return metadata["nextloc"]["training_run"]
    papermill = metadata.get("papermill", {})
    if papermill.get("parameters", {}).get("train") is False or "duration" not in papermill:
        return None
    return {key: papermill.get(key) for key in ("start_time", "end_time", "duration")}


def rerender(names: list[str] | None = None) -> list[Path]:
    """Execute the run template with ``train=False`` for every saved run of ``names`` (default:
    all experiments), so that its page shows what the run saved, without training again."""
    import nbformat

    from nextloc.core.paths import notebook_path, run_dir
    from nextloc.experiments.registry import load_registry
    from nextloc.experiments.runner import execute

    experiments = load_registry()["experiments"]
    written = []
    for name in names or list(experiments):
        spec = experiments[name]
        for seed in spec["seeds"]:
            if not (run_dir(name, seed, False) / "metrics.json").is_file():
                continue
            output = notebook_path(name, seed, False)
            trained = training_metadata(output)
            execute(spec.get("notebook", "train"), output,
                    f"# `{name}`, seed {seed}\n\n{spec.get('description', '')}",
                    {"experiment": name, "seed": seed, "quick": False, "train": False})
            if trained:
                page = nbformat.read(output, as_version=4)
                page.metadata["nextloc"] = {"training_run": trained}
                nbformat.write(page, output)
            written.append(output)
    return written


if __name__ == "__main__":
    for path in rerender(sys.argv[1:] or None):
        print(path)
