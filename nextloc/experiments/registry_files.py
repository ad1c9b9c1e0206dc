"""The registry's files: ``experiments/*.yaml``, one per chapter of the book (its experiments,
ablations, searches, tables and sweeps), one for the headline and one for the prior report's
claims. They are read in the order of their names and merged into one registry: mappings key by
key, a name defined in two files refused with both files named; lists (the road, targets,
claims) joined in file order. The order of the files is the order of the experiments in every
generated table, hence the numbers in their names.

Three shorthands are resolved here, so that nothing after the loader sees them:

- ``refit_of: X`` makes an experiment the protocol-B twin of experiment X: X's settings and
  seeds, refit on train + validation (``refit: true``) for the median best epoch of X's runs
  (``epochs_from: X``); the twin writes only its description and what differs (a teacher of
  its own protocol);
- ``seed_sets:`` names lists of seeds once; ``seeds: five`` in an experiment, an ablation or a
  search stands for the set of that name;
- ``{runs_of: X}`` as the value of a setting (a teacher's or an ensemble's members) stands for
  the checkpoints of experiment X's runs, one per seed of X, in the order of its seeds."""
from __future__ import annotations

from pathlib import Path

from nextloc.core.config_file import read_yaml
from nextloc.core.errors import ConfigError, shorten
from nextloc.experiments.registry_check import check_sections, check_seeds


def read_registry_files(folder: Path) -> dict:
    """The merged registry of ``folder``, seed sets resolved (not yet checked as a whole)."""
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise ConfigError(f"experiment registry not found: no *.yaml file in {folder}.")
    merged: dict = {}
    origin: dict[tuple[str, str], str] = {}  # (section, name) -> the file that defined it
    for path in files:
        document = read_yaml(path, "experiment registry")
        check_sections(document, str(path))
        for section, value in document.items():
            if isinstance(value, list):
                merged.setdefault(section, []).extend(value)
            elif value is not None:
                merge_mapping(merged.setdefault(section, {}), value, section, path, origin)
    resolve_refit_twins(merged)
    resolve_seed_sets(merged)
    resolve_runs_of(merged)
    return merged


def merge_mapping(into: dict, value: dict, section: str, path: Path, origin: dict) -> None:
    for name, entry in value.items():
        if name in into:
            raise ConfigError(f"{section}: '{shorten(str(name), 60)}' is defined twice, in "
                              f"{origin[section, name]} and in {path.name}.")
        into[name] = entry
        origin[section, name] = path.name


# What a twin does not take from its protocol-A experiment: that experiment's own identity.
NOT_TWINNED = ("seeds", "description", "prior_report_acc1", "prior_report_by_seed")


def resolve_refit_twins(registry: dict) -> None:
    """Replace every experiment ``{refit_of: X, ...}`` by X's settings refit, in its place."""
    experiments = registry.get("experiments") or {}
    twins = {name: spec["refit_of"] for name, spec in experiments.items()
             if isinstance(spec, dict) and "refit_of" in spec}
    for name, of in twins.items():
        spec = experiments[name]
        own = {k: v for k, v in spec.items() if k != "refit_of"}
        base = experiments.get(of) if isinstance(of, str) and of not in twins else None
        if not isinstance(base, dict):
            raise ConfigError(f"experiment '{shorten(str(name), 60)}': refit_of "
                              f"'{shorten(str(spec['refit_of']), 60)}' is not an experiment of "
                              "the registry written out in full.")
        experiments[name] = {**{k: v for k, v in base.items() if k not in NOT_TWINNED},
                             **{k: v for k, v in own.items() if k not in NOT_TWINNED},
                             "refit": True, "epochs_from": of,
                             "seeds": own.get("seeds", base.get("seeds")),
                             **({"description": own["description"]} if "description" in own
                                else {})}


def resolve_seed_sets(registry: dict) -> None:
    """Replace every ``seeds: <name>`` by the list ``seed_sets:`` gives that name."""
    sets = registry.pop("seed_sets", None) or {}
    for name, seeds in sets.items():
        check_seeds(f"seed_sets: '{shorten(str(name), 60)}'", seeds)
    holders = [(f"experiment '{name}'", spec)
               for name, spec in (registry.get("experiments") or {}).items()]
    holders += [(f"search '{name}'", spec)
                for name, spec in (registry.get("searches") or {}).items()]
    for base, spec in (registry.get("ablations") or {}).items():
        holders.append((f"ablations of '{base}'", spec))
        holders += [(f"ablations of '{base}', '{switch}'", settings)
                    for entry in (spec or {}).get("without") or [] if isinstance(entry, dict)
                    for switch, settings in entry.items()]
    for where, holder in holders:
        seeds = holder.get("seeds") if isinstance(holder, dict) else None
        if isinstance(seeds, str):
            if seeds not in sets:
                raise ConfigError(f"{shorten(where, 100)}: seeds '{shorten(seeds, 40)}' is not a "
                                  f"set of 'seed_sets:' {sorted(map(str, sets))}.")
            holder["seeds"] = list(sets[seeds])


def resolve_runs_of(registry: dict) -> None:
    """Replace every ``{runs_of: X}`` setting of an experiment or a search point by the
    checkpoint paths of X's runs (placeholders filled per run by the registry)."""
    experiments = registry.get("experiments") or {}
    holders = [(f"experiment '{name}'", spec) for name, spec in experiments.items()]
    for name, spec in (registry.get("searches") or {}).items():
        if isinstance(spec, dict):
            holders += [(f"search '{name}'", settings)
                        for settings in [spec.get("base")] + list(spec.get("points") or [])]
    for where, settings in holders:
        for key, value in (settings.items() if isinstance(settings, dict) else ()):
            if isinstance(value, dict) and set(value) == {"runs_of"}:
                settings[key] = runs_of(f"{where}, {key}", value["runs_of"], experiments)


def runs_of(where: str, name, experiments: dict) -> list[str]:
    seeds = experiments.get(name, {}).get("seeds") if isinstance(name, str) else None
    if not isinstance(seeds, list):
        raise ConfigError(f"{shorten(where, 100)}: runs_of '{shorten(str(name), 60)}' is not an "
                          "experiment with a list of seeds.")
    return [f"{{checkpoints}}/{name}/seed_{seed}.safetensors" for seed in seeds]
