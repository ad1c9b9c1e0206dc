"""The registry's files: ``experiments/*.yaml``, one per chapter of the book (its experiments,
ablations, searches, tables and sweeps), one for the headline and one for the prior report's
claims. They are read in the order of their names and merged into one registry: mappings key by
key, a name defined in two files refused with both files named; lists (the road, targets,
claims) joined in file order. The order of the files is the order of the experiments in every
generated table, hence the numbers in their names.

``seed_sets:`` names lists of seeds once; ``seeds: five`` in an experiment, an ablation or a
search stands for the set of that name."""
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
    resolve_seed_sets(merged)
    return merged


def merge_mapping(into: dict, value: dict, section: str, path: Path, origin: dict) -> None:
    for name, entry in value.items():
        if name in into:
            raise ConfigError(f"{section}: '{shorten(str(name), 60)}' is defined twice, in "
                              f"{origin[section, name]} and in {path.name}.")
        into[name] = entry
        origin[section, name] = path.name


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
