"""What the preprocessing chapter (``notebooks/preprocess.ipynb``) shows, as tables, sentences and
a map written for a reader: the counts after each step, one user's tracks and stays, the model
trained on the result, and the measured cost (``results/benchmarks/*.json``). Imports geopandas
and shapely, so only the chapter imports it."""
from __future__ import annotations

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shapely

from nextloc.report.readable import count, percent

# The per-user steps (reading, staypoints, quality) run together, a shard of users at a time:
# their seconds stand on the row of the last of them.
STEPS = [("GPS fixes read", "gps_points", None),
         ("duplicate fixes dropped", "duplicate_points_dropped", None),
         ("staypoints", "staypoints", None),
         ("activity staypoints", "activity_staypoints", None),
         ("users passing the quality filter", "users_passing_quality", "shards"),
         ("staypoints at a location", "staypoints_at_locations", "locations"),
         ("locations used", "locations", None),
         ("staypoints after merging", "staypoints_merged", "merge"),
         ("users with targets in every split", "users", "table"),
         ("staypoints in the dataset", "final_staypoints", None),
         ("valid target ids", "valid_ids", None)]
GEOLIFE_POINTS, GEOLIFE_USERS = 24.9e6, 182  # the full Geolife 1.3 release (Zheng et al. 2010)
METRICS = {"acc1": "Acc@1", "acc5": "Acc@5", "acc10": "Acc@10", "mrr": "MRR",
           "ndcg10": "NDCG@10", "f1": "weighted F1"}


def command_line(raw: str, out: str, options: dict) -> str:
    """The ``nextloc preprocess`` call the chapter makes, as a reader would type it."""
    flags = "".join(f" \\\n    --{key.replace('_', '-')} {value}" for key, value in options.items())
    return f"nextloc preprocess {raw} --out {out}{flags}"


def step_table(result) -> pd.DataFrame:
    """Counts after each step of a :class:`~nextloc.preprocess.pipeline` result and the step's
    seconds."""
    rows = [(label, count(result.counts[key]), f"{result.seconds[step]:.2f}" if step else "")
            for label, key, step in STEPS]
    return pd.DataFrame(rows, columns=["after the step", "count", "seconds"]).set_index(
        "after the step")


def metrics_table(report: dict) -> pd.DataFrame:
    """Validation and test metrics of ``train_on_dataset`` in %, the samples as a count."""
    rows = {split: {**{name: percent(report[split][key]) for key, name in METRICS.items()},
                    "samples": count(report[split]["n"])} for split in ("validation", "test")}
    return pd.DataFrame(rows).T


def user_map(result):
    """The GPS fixes, staypoints and locations of the raw sample's user with the most stays in
    the dataset, in km around that user's busiest location; (figure, Geolife user number)."""
    users = result.users.dropna(subset=["user_id"])
    number = result.staypoints["user_id"].value_counts().idxmax()
    shown = int(users.loc[users["user_id"] == number, "source_user"].iloc[0])
    from nextloc.preprocess import tracks  # trackintel: only the map needs it

    folder = next(name for name in tracks.list_users(result.raw) if int(name) == shown)
    fixes = tracks.read_geolife(result.raw, progress=False, users=[folder])
    crs = fixes.estimate_utm_crs()  # metres, from the local projection database: no network
    fixes = fixes.to_crs(crs)
    found = result.all_staypoints[result.all_staypoints["user_id"] == shown].to_crs(crs)
    final = result.staypoints[result.staypoints["user_id"] == number]
    final = gpd.GeoDataFrame(final, geometry=gpd.points_from_xy(final["lon"], final["lat"]),
                             crs="EPSG:4326").to_crs(crs)
    places = result.locations[result.locations["id"].isin(final["location_id"])]
    extents = gpd.GeoSeries(shapely.from_wkt(places["extent"]), crs="EPSG:4326").to_crs(crs)
    busiest = extents.iloc[places["staypoints"].to_numpy().argmax()].centroid

    def km(geometry):
        return geometry.translate(-busiest.x, -busiest.y).scale(1e-3, 1e-3, origin=(0, 0))

    fig, (whole, zoom) = plt.subplots(1, 2, figsize=(11, 5))
    for ax in (whole, zoom):
        points, stays, kept = km(fixes.geometry), km(found.geometry), km(final.geometry)
        ax.scatter(points.x, points.y, s=0.3, color="0.6", label="GPS fixes")
        km(extents).plot(ax=ax, facecolor="none", edgecolor="tab:red", linewidth=1.2)
        ax.scatter(stays.x, stays.y, s=60, facecolor="none", edgecolor="tab:blue",
                   label="staypoints (all)")
        ax.scatter(kept.x, kept.y, s=12, color="tab:red", label="staypoints in the dataset")
        ax.set_aspect("equal")
        ax.set(xlabel="km east", ylabel="km north")
    zoom.set(xlim=(-0.4, 0.4), ylim=(-0.4, 0.4), title="800 m around its most visited location")
    whole.set_title(f"Geolife user {shown:03d}: {len(fixes):,} GPS fixes")
    whole.legend(loc="lower left", fontsize=8, markerscale=1.5)
    fig.tight_layout()
    return fig, shown


def cost_table(bench: dict) -> pd.DataFrame:
    """One row per benchmark run of ``nextloc benchmark preprocess``: fixes, staypoints, seconds
    per step, total wall and CPU seconds."""
    rows = [{"copies": run["copies"], "GPS fixes": count(run["gps_points"]),
             "staypoints": count(run["staypoints"]),
             **{f"{step} s": f"{seconds:.2f}" for step, seconds in run["seconds"].items()},
             "total s": f"{run['total_seconds']:.2f}", "CPU s": f"{run['cpu_seconds']:.2f}"}
            for run in bench["runs"]]
    return pd.DataFrame(rows).set_index("copies")


def cost_sentence(bench: dict) -> str:
    machine, projection = bench["machine"], bench["projection"]
    return (f"Per million fixes: {bench['cpu_seconds_per_million_points']:.1f} CPU s, "
            f"{bench['seconds_per_million_points']:.1f} wall s at a load of "
            f"{machine['load_average_1min']:.1f} on {machine['cpus']} cores, "
            f"{bench['memory_fit_mb']['per_million_points'] / 1024:.2f} GB of memory. The full "
            f"Geolife release ({projection['gps_points'] / 1e6:.1f} million fixes) projects to "
            f"{projection['cpu_minutes']:.1f} CPU minutes ({projection['minutes']:.1f} wall "
            f"minutes at that load) and {projection['memory_gb']:.1f} GB.")


def scaling_table(scaling: dict) -> pd.DataFrame:
    """``nextloc benchmark training``: samples, classes and CPU seconds per (users, places)."""
    rows = [{"users": row["users"], "places": count(row["places"]),
             "training samples": count(row["train_samples"]), "classes": count(row["classes"]),
             "build s": f"{row['build_seconds']:.3f}", "markov CPU s": f"{row['markov_cpu_seconds']:.3f}",
             "pointer parameters": count(row["pointer_params"]),
             "pointer epoch CPU s": f"{row['pointer_epoch_cpu_seconds']:.2f}",
             "pointer ms per sample": f"{row['pointer_ms_per_training_sample']:.3f}"}
            for row in scaling["rows"]]
    return pd.DataFrame(rows).set_index(["users", "places"])


def sharded_table(bench: dict) -> pd.DataFrame:
    """``nextloc benchmark preprocess``: one row per run on generated tracks."""
    rows = [{"users": run["users"], "workers": run["workers"], "shards": run["shards"],
             "GPS fixes": count(run["gps_points"]), "staypoints": count(run["staypoints"]),
             "seconds": f"{run['seconds']:.1f}",
             "peak memory MB": f"{run['peak_memory_mb']:.0f}"} for run in bench["runs"]]
    return pd.DataFrame(rows).set_index(["users", "workers"])


def projection(bench: dict, sample: dict, cores: int = 64, machines: int = 16) -> dict:
    """100x Geolife from the one-worker runs of ``bench`` (preprocess_scaling.json): the per-user
    steps' seconds per million fixes, split over ``cores`` (one machine) or ``cores * machines``
    (a Dask cluster); the global steps' seconds per staypoint, on one core, for as many
    staypoints per fix as the real raw sample has (``sample``: preprocess.json), whose CPU seconds
    per fix give a second, real-data estimate of the machine's hours."""
    runs = [run for run in bench["runs"] if run["workers"] == 1]
    fixes = np.array([run["gps_points"] for run in runs], dtype=float)
    stays = np.array([run["staypoints"] for run in runs], dtype=float)
    per_user_steps = np.array([run["step_seconds"]["shards"] for run in runs])
    global_steps = np.array([run["seconds"] for run in runs]) - per_user_steps
    per_fix, per_stay = _slope(fixes, per_user_steps), _slope(stays, global_steps)
    real = sample["runs"][0]
    target_fixes = 100 * GEOLIFE_POINTS
    target_stays = target_fixes * real["staypoints"] / real["gps_points"]
    one_core = per_fix * target_fixes
    serial = per_stay * target_stays
    return {"fixes": target_fixes, "users": 100 * GEOLIFE_USERS, "staypoints": target_stays,
            "cores": cores, "machines": machines, "one_core_hours": one_core / 3600,
            "global_hours": serial / 3600,
            "machine_hours": (one_core / cores + serial) / 3600,
            "cluster_hours": (one_core / (cores * machines) + serial) / 3600,
            "sample_machine_hours": (sample["cpu_seconds_per_million_points"] * target_fixes
                                     / 1e6 / cores + serial) / 3600,
            "worker_memory_mb": max(run["peak_memory_mb"] for run in bench["runs"]),
            "shard_users": bench["options"]["shard_users"],
            "shard_fixes": bench["options"]["shard_users"] * GEOLIFE_POINTS / GEOLIFE_USERS,
            "memory_mb_per_million_fixes": sample["memory_fit_mb"]["per_million_points"]}


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Seconds per unit from a least-squares line (its intercept is start-up, not growth)."""
    return float(np.polyfit(x, y, 1)[0]) if len(np.unique(x)) > 1 else float(y[0] / x[0])


def projection_sentence(found: dict) -> str:
    return (f"100 times Geolife is {found['fixes'] / 1e9:.2f} billion fixes of "
            f"{found['users']:,} users, and about {found['staypoints'] / 1e6:.1f} million "
            f"staypoints at the sample's rate. Its per-user steps take "
            f"{found['one_core_hours']:.0f} hours on one core of this machine: "
            f"{found['machine_hours']:.1f} hours on one {found['cores']}-core machine, and "
            f"{found['cluster_hours']:.1f} hours on a Dask cluster of {found['machines']} such "
            f"machines, of which {found['global_hours']:.1f} hours are the global steps "
            f"(locations, merging, the table) on one core. At the CPU seconds per fix of the "
            f"real raw sample instead, the machine would take "
            f"{found['sample_machine_hours']:.1f} hours. A worker holds one shard: "
            f"{found['shard_fixes'] / 1e6:.2f} million fixes for {found['shard_users']} users of "
            f"Geolife's average size, "
            f"about {found['shard_fixes'] / 1e6 * found['memory_mb_per_million_fixes']:.0f}"
            f" MB at the rate measured on the raw sample, beside the "
            f"{found['worker_memory_mb']:.0f} MB peak measured here.")
