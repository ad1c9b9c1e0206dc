"""What ``nextloc run`` checks before any kernel starts, so that a typo costs a second and one
line, not a kernel start and a papermill traceback: each requested experiment's settings resolve
for every seed (searches found, placeholders filled) and pass TrainConfig's checks, its notebook
template exists, the checkpoints it loads exist (or a run of the same command writes them), its
model is registered and accepts its options, and a model that loads no checkpoints builds within
the parameter budget on the data's real vocabulary. A full run also needs a readable
results/metrics.csv."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from nextloc.core import paths
from nextloc.core.errors import ConfigError, shorten
from nextloc.data.dataset_names import check_dataset_folder, experiment_dataset
from nextloc.models.base import build_model, model_class
from nextloc.experiments.registry import experiment_settings, run_settings, train_config
from nextloc.experiments.results import read_metrics
from nextloc.training.settings import check_setting


def check_runs(names: list[str], seeds: list[int] | None, quick: bool, project) -> None:
    """Raise the first problem of the runs ``nextloc run`` is about to start in ``project``
    (a :class:`~nextloc.experiments.project.Project`)."""
    if not quick:
        read_metrics()  # a damaged table stops here, not in a kernel that records a row
        check_writable(paths.RESULTS_DIR)
    experiments = project.experiments
    vocabularies: dict[str, list] = {}
    for name in names:
        spec = experiments[name]
        dataset = experiment_dataset(spec)
        folder = check_dataset_folder(name, dataset, project.data)
        template = paths.NOTEBOOKS / f"{spec.get('notebook', 'train')}.ipynb"
        if not template.is_file():
            raise ConfigError(f"experiment '{name}': notebook template {template} not found.")
        for seed in seeds or spec["seeds"]:
            check_setting("seed", seed)
            # epochs_from is resolved when its runs exist, right before this run starts
            config = train_config(run_settings(name, seed, quick, resolve_epochs=False),
                                  seed=seed)
            check_checkpoints_to_read(name, config.model_options, names, quick)
        check_model(name, config, vocabularies.setdefault(dataset, []), folder)


def check_checkpoints_to_read(name: str, options: dict, names: list[str], quick: bool) -> None:
    """Every checkpoint a run loads (ensemble members, a teacher) exists already, or an
    experiment of this same command writes it."""
    for value in options.values():
        for text in value if isinstance(value, list) else [value]:
            path = Path(str(text))
            if path.suffix == ".safetensors" and not path.is_file() \
                    and path.parent.name not in names:
                raise ConfigError(
                    f"experiment '{name}' reads {path}, which does not exist, and no experiment "
                    f"of this command writes it: run `nextloc run {path.parent.name}"
                    f"{' --quick' if quick else ''}` first, or both in one command.")


def check_writable(folder) -> None:
    """Create and remove a file in ``folder``, as a full run's recording will."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        handle, name = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(handle)
        os.unlink(name)
    except OSError as err:
        raise ConfigError(f"{folder}/ is not writable ({err.strerror}); full runs record their "
                          f"rows and files there.") from None


def check_model(name: str, config, vocabulary: list, folder: Path | None = None) -> None:
    """Build the experiment's model on the real vocabulary of its dataset ``folder`` (loaded
    once per dataset, into ``vocabulary``), unless it loads trained members, whose checkpoints
    earlier runs write."""
    model_class(config.model, config.model_options)
    if "members" in config.model_options:
        return
    if not vocabulary:
        from nextloc.data.split import load_dataset

        data = load_dataset(folder)
        vocabulary.extend([data.num_locations, data.num_users])
    try:
        build_model(config.model, *vocabulary, over_budget_ok=config.over_budget_ok,
                    **config.model_options)
    except ConfigError as err:
        raise ConfigError(f"experiment '{name}': {err}") from err


def dependencies(name: str, spec: dict) -> set[str]:
    """Experiments whose runs this one reads: its ``epochs_from`` and every checkpoint its
    settings name (ensemble members, a distillation teacher), a searched point's included."""
    names = {spec["epochs_from"]} if "epochs_from" in spec else set()
    for value in experiment_settings(name, resolve_epochs=False).values():
        for text in value if isinstance(value, list) else [value]:
            names |= set(re.findall(r"\{checkpoints\}/([^/]+)/", str(text)))
    return names


def run_order(names: list[str], experiments: dict) -> list[str]:
    """``names`` in the order to run them: registry order, except that a run comes after the
    runs it reads (the registry lists pointer_pair_averaged after an experiment that reads it;
    that one would have started without its teacher). A cycle of experiments that read each
    other's runs can never run ("run X first" pointed at a run that needed this one)."""
    found: dict[str, set[str]] = {}

    def visit(name: str, chain: list[str]) -> None:
        if name in chain:
            cycle = " -> ".join(chain[chain.index(name):] + [name])
            raise ConfigError(f"registry: experiments read each other's runs in a cycle "
                              f"({shorten(cycle, 200)}); no order can run them.")
        if name not in found:
            found[name] = {d for d in dependencies(name, experiments[name]) if d in experiments}
            for dependency in sorted(found[name]):
                visit(dependency, chain + [name])

    ordered: list[str] = []

    def place(name: str) -> None:
        for dependency in sorted(found[name] & set(names), key=list(experiments).index):
            place(dependency)
        if name not in ordered:
            ordered.append(name)

    for name in names:
        visit(name, [])
        place(name)
    return ordered
