"""The shape of ``experiments/*.yaml``, checked when it is read: known sections, one mapping per
experiment with a model and a list of seeds, known keys with values of the right type. Each
problem is one message naming the experiment and the key."""
from __future__ import annotations

from dataclasses import fields

from nextloc.core.errors import ConfigError, shorten
from nextloc.core.paths import is_plain_name
from nextloc.training.settings import MAX_SEED, TrainConfig, check_setting

SECTIONS = {"experiments": dict, "ablations": dict, "searches": dict, "analyses": dict,
            "tables": dict, "sweeps": dict, "targets": list, "published": list,
            "claims": list, "headline": dict, "statistics": dict, "road": list,
            "seed_sets": dict, "book": dict}
# Keys of an experiment that describe or resolve it rather than set a training option.
METADATA_KEYS = frozenset({"seeds", "search", "epochs_from", "notebook", "description",
                           "prior_report_acc1", "prior_report_by_seed", "dataset"})
TRAINING_KEYS = frozenset(f.name for f in fields(TrainConfig)) - {"seed"}
# Training settings that `nextloc run` and `nextloc search` set for every run themselves (the
# device the machine has, one thread per job): written in the registry they were silently
# overridden, so they are refused instead.
RUN_OWNED_KEYS = {"device": "picked per run (a GPU when there is one, else the CPU)",
                  "num_threads": "one per job; `nextloc run --jobs N` sets the parallelism"}


def check_sections(registry, source: str) -> None:
    if registry is None:
        raise ConfigError(f"{source} is empty; it needs an 'experiments:' mapping.")
    if not isinstance(registry, dict):
        raise ConfigError(f"{source} must be a mapping with an 'experiments:' key; got a "
                          f"{type(registry).__name__}.")
    unknown = sorted(map(str, set(registry) - set(SECTIONS)))
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {shorten(unknown, 100)}; the "
                          f"sections are {sorted(SECTIONS)}.")
    for section, kind in SECTIONS.items():
        if registry.get(section) is not None and not isinstance(registry[section], kind):
            raise ConfigError(f"{source}: '{section}' must be a "
                              f"{'mapping' if kind is dict else 'list'}.")
    registry["experiments"] = registry.get("experiments") or {}


def check_seeds(where: str, seeds) -> None:
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED
                       for s in seeds) or len(set(seeds)) != len(seeds)):
        raise ConfigError(f"{where}: seeds must be a list of distinct integers in [0, 2^32), "
                          f"e.g. seeds: [42, 123, 7]; got {shorten(repr(seeds), 60)}.")


def check_dataset_name(where: str, value) -> None:
    """An experiment's or a search's ``dataset:``: a folder name, never a path."""
    if not (isinstance(value, str) and is_plain_name(value)):
        raise ConfigError(f"{where}: dataset must name a data folder beside the report's data "
                          f"(e.g. dataset: fsq_nyc), not a path; got {shorten(repr(value), 60)}.")


def check_metadata(where: str, key: str, value, registry: dict) -> None:
    if key in ("search", "epochs_from", "notebook", "description") and not isinstance(value, str):
        raise ConfigError(f"{where}: '{key}' must be a string; got {shorten(repr(value), 60)}.")
    if key == "search" and value not in (registry.get("searches") or {}):
        raise ConfigError(f"{where}: search '{shorten(value, 60)}' is not in 'searches:'.")
    if key == "epochs_from" and value not in registry["experiments"]:
        raise ConfigError(f"{where}: epochs_from '{shorten(value, 60)}' is not an experiment.")
    if key == "dataset":
        check_dataset_name(where, value)
    if key == "notebook" and not is_plain_name(value):
        raise ConfigError(f"{where}: notebook must name a template of notebooks/ (no path).")
    fractions = ({"": value} if key == "prior_report_acc1" else
                 value if key == "prior_report_by_seed" and isinstance(value, dict) else None)
    if key.startswith("prior_report") and (fractions is None or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
            for v in fractions.values())):
        raise ConfigError(f"{where}: {key} must be a fraction in [0, 1]"
                          f"{' per seed' if key.endswith('seed') else ''}.")


def check_experiment(name, spec, registry: dict) -> None:
    where = f"registry, experiment '{shorten(name, 60)}'"
    if not is_plain_name(name):
        raise ConfigError(f"{where}: an experiment name must be a plain name (letters, digits, "
                          f"_ . -), as it names folders.")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: must be a mapping of settings; got "
                          f"{shorten(repr(spec), 60)}.")
    if "model" not in spec:
        raise ConfigError(f"{where}: no 'model'.")
    check_seeds(where, spec.get("seeds"))
    for key, value in spec.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: key {shorten(repr(key), 40)} is not a name.")
        if key == "seed":
            raise ConfigError(f"{where}: 'seed' is set per run; list them as seeds: [42, ...].")
        if key in RUN_OWNED_KEYS:
            raise ConfigError(f"{where}: '{key}' cannot be set in the registry, it is "
                              f"{RUN_OWNED_KEYS[key]}; remove it.")
        if key in TRAINING_KEYS:
            check_setting(key, value)
        elif key in METADATA_KEYS:
            check_metadata(where, key, value, registry)
        elif not key.startswith("model."):
            raise ConfigError(f"{where}: unknown key '{shorten(key, 60)}'; training settings "
                              f"are {sorted(TRAINING_KEYS)}, model options are written "
                              f"'model.<option>', other keys {sorted(METADATA_KEYS)}.")


def check_ablations(ablations: dict, experiments: dict) -> None:
    """``BASE: {seeds: [...], without: [switch or {switch: {settings}}, ...]}`` per entry."""
    for base, spec in ablations.items():
        where = f"registry, ablations of '{shorten(base, 60)}'"
        if not isinstance(experiments.get(base), dict):
            raise ConfigError(f"{where}: '{shorten(base, 60)}' is not an experiment.")
        if not isinstance(spec, dict) or not isinstance(spec.get("without"), list):
            raise ConfigError(f"{where}: must be a mapping with seeds: [...] and without: [...].")
        check_seeds(where, spec.get("seeds"))
        for switch in spec["without"]:
            if not (is_plain_name(switch) or isinstance(switch, dict) and len(switch) == 1
                    and is_plain_name(next(iter(switch)))
                    and isinstance(next(iter(switch.values())), dict)):
                raise ConfigError(f"{where}: each 'without' entry is a switch name or "
                                  f"{{name: {{settings}}}}; got {shorten(repr(switch), 60)}.")


HEADLINE_KEYS = {"train_only", "refit", "confirmation_seeds", "frozen_at", "search_era",
                 "without_teacher"}


def check_headline(headline: dict, experiments: dict, source: str) -> None:
    """``headline: {train_only: A, refit: B, ...}``: two experiments of the registry, B a refit;
    optionally the confirmation seeds (distinct from every seed another experiment uses), the
    commit the configuration was frozen at, the search-era pair and the best model without a
    teacher."""
    named = {k: headline.get(k) for k in ("train_only", "refit", "without_teacher")
             if k in headline}
    era = headline.get("search_era") or {}
    if (not {"train_only", "refit"} <= set(headline) or set(headline) - HEADLINE_KEYS
            or not isinstance(era, dict)
            or not all(isinstance(name, str) and name in experiments
                       for name in [*named.values(), *era.values()])):
        raise ConfigError(f"{source}: 'headline' must be {{train_only: EXPERIMENT, refit: "
                          f"EXPERIMENT}} (optionally {sorted(HEADLINE_KEYS - {'train_only', 'refit'})}"
                          f"), all experiments of the registry; got "
                          f"{shorten(repr(headline), 100)}.")
    if not experiments[headline["refit"]].get("refit"):
        raise ConfigError(f"{source}: the headline's refit experiment '{headline['refit']}' "
                          f"must have 'refit: true'.")
    confirmation = headline.get("confirmation_seeds")
    if confirmation is not None:
        check_seeds(f"{source}, headline confirmation_seeds", confirmation)
        for name, spec in experiments.items():
            shared = set(spec.get("seeds", [])) & set(confirmation)
            if shared and set(spec["seeds"]) != set(confirmation):
                raise ConfigError(f"{source}: experiment '{name}' uses confirmation seed(s) "
                                  f"{sorted(shared)}; confirmation seeds belong to the "
                                  f"confirmation runs alone.")


def check_searches(searches: dict, source: str) -> None:
    """Each search a mapping; ``trials`` at least 1; ``base_search`` another search, with no
    cycle (a cycle was a RecursionError, or "run X first" for a run that can never come)."""
    for name, spec in searches.items():
        where = f"{source}, search '{shorten(name, 60)}'"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a mapping (seed, base, space and trials, or "
                              f"points).")
        if "dataset" in spec:
            check_dataset_name(where, spec["dataset"])
        trials = spec.get("trials", 1)
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ConfigError(f"{where}: trials must be a whole number >= 1; got "
                              f"{shorten(repr(trials), 40)}.")
        named = {key for part in ("base", "space") if isinstance(spec.get(part), dict)
                 for key in spec[part]}
        if named & set(RUN_OWNED_KEYS):
            raise ConfigError(f"{where}: {sorted(named & set(RUN_OWNED_KEYS))} cannot be set "
                              f"in a search: each trial runs on one thread of this machine.")
        chain, current = [name], spec.get("base_search")
        while current is not None:
            if not isinstance(current, str) or current not in searches:
                raise ConfigError(f"{where}: base_search '{shorten(current, 60)}' is not a "
                                  f"search of 'searches:'.")
            if current in chain:
                cycle = " -> ".join(chain[chain.index(current):] + [current])
                raise ConfigError(f"{where}: base_search forms a cycle ({shorten(cycle, 200)}); "
                                  f"one search must start from fixed settings.")
            chain.append(current)
            current = (searches[current] or {}).get("base_search") \
                if isinstance(searches[current], dict) else None


def check_registry(registry, source: str = "experiments/") -> None:
    """Raise a ConfigError on the first problem of a loaded (ablations expanded) registry."""
    for name, spec in registry["experiments"].items():
        check_experiment(name, spec, registry)
    check_searches(registry.get("searches") or {}, source)
    if registry.get("headline") is not None:
        check_headline(registry["headline"], registry["experiments"], source)
    margin = (registry.get("statistics") or {}).get("equivalence_margin", 1.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < 100:
        raise ConfigError(f"{source}: statistics.equivalence_margin must be a number of points "
                          f"in (0, 100); got {shorten(repr(margin), 40)}.")
    for name, spec in (registry.get("analyses") or {}).items():
        if not is_plain_name(name) or not isinstance(spec, dict) or "title" not in spec:
            raise ConfigError(f"{source}: analysis '{shorten(name, 60)}' must be a plain name "
                              f"with a mapping that has a 'title'.")
    for chapter, pages in (registry.get("book") or {}).items():
        if not isinstance(pages, list) or not all(isinstance(p, str) and p for p in pages):
            raise ConfigError(f"{source}: book: '{shorten(str(chapter), 60)}' must list the "
                              f"analyses and experiments (or globs of their names) it holds.")
