"""Random hyperparameter search on the validation split (the test split is never evaluated).

The space, the number of trials and the sampling seed come from ``experiments.yaml``
(``searches:``); every trial is appended to ``results/search/<name>.csv`` as it finishes, so an
interrupted search resumes where it stopped, and the best trial by validation Acc@1 is the
configuration the experiments use. A search may start from another search's best point
(``base_search``) and score each trial as the mean over several training seeds (``seeds``),
for decisions finer than the spread between seeds; such a child search may list explicit
``points`` instead of a ``space``, and its best trial replaces the base search's best point only
if it scores higher on validation.
"""
from __future__ import annotations

import json
import random
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
from tqdm import tqdm

from nextloc.errors import ConfigError
from nextloc.paths import atomic_write
from nextloc.registry import best_point, search_spec, train_config
from nextloc.results import search_table_path


def sample_trials(space: dict[str, list], trials: int, seed: int) -> list[dict]:
    """``trials`` distinct points of the grid ``space``, drawn uniformly without replacement."""
    rng = random.Random(seed)
    drawn, seen = [], set()
    grid_size = 1
    for name, values in space.items():
        distinct = {json.dumps(v, sort_keys=True) for v in values}
        if len(distinct) != len(values) or not values:
            raise ConfigError(f"search space '{name}' must list distinct values; got {values}")
        grid_size *= len(values)
    while len(drawn) < min(trials, grid_size):
        point = {name: rng.choice(values) for name, values in space.items()}
        key = json.dumps(point, sort_keys=True)
        if key not in seen:
            seen.add(key)
            drawn.append(point)
    return drawn


def _train_one_seed(base: dict, point: dict, seed: int) -> dict:
    from nextloc.data import load_dataset
    from nextloc.train import train

    result = train(train_config({**base, **point}, seed=seed, num_threads=1), load_dataset(),
                   progress=False, evaluate_test=False)
    return {"n_params": result.n_params, "best_epoch": result.best_epoch,
            "val_acc1": result.val["acc1"], "val_mrr": result.val["mrr"],
            "train_seconds": result.train_seconds}


def trial_row(point: dict, per_seed: list[dict]) -> dict:
    """One row of the search table: the point and its scores averaged over the seeds."""
    mean = lambda name: sum(r[name] for r in per_seed) / len(per_seed)  # noqa: E731
    return {"trial": json.dumps(point, sort_keys=True), **point, "seeds": len(per_seed),
            "n_params": per_seed[0]["n_params"], "best_epoch": mean("best_epoch"),
            "val_acc1": mean("val_acc1"), "val_mrr": mean("val_mrr"),
            "train_seconds": round(mean("train_seconds"), 1)}


def run_search(name: str, jobs: int = 2) -> pd.DataFrame:
    spec = search_spec(name)
    base = {**(best_point(spec["base_search"]) if "base_search" in spec else {}), **spec["base"]}
    seeds = spec.get("seeds", [spec["seed"]])
    path = search_table_path(name)
    done = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["trial"])
    candidates = (spec["points"] if "points" in spec else
                  sample_trials(spec["space"], spec["trials"], spec["seed"]))
    points = [p for p in candidates if json.dumps(p, sort_keys=True) not in set(done["trial"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    # Every (point, seed) is its own job, so that a few multi-seed points still fill the cores.
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [[pool.submit(_train_one_seed, base, point, seed) for seed in seeds]
                   for point in points]
        for point, per_seed in tqdm(zip(points, futures), total=len(points),
                                    desc=f"search {name}", disable=not points):
            row = trial_row(point, [future.result() for future in per_seed])
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            atomic_write(path, lambda tmp, table=done: table.to_csv(tmp, index=False))
    return done.sort_values("val_acc1", ascending=False)
