"""Worked examples of real predictions: for one user, the model's top places with the parts of
their probability that it copied from the history and that it generated, the examples chosen by
a fixed rule (:func:`choose_examples`), and where their stays were (:func:`example_places`).
Reads any ``pointer`` model or ``pointer_ensemble`` through
:func:`nextloc.report.analysis.mixture_parts`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from nextloc.report.analysis import mixture_parts
from nextloc.data.split import UNSEEN

EXAMPLE_KINDS = ("right, a known place", "right, the unseen class", "wrong")


def busiest_user(split) -> int:
    """The user with the most samples in ``split`` (the smallest id among equals)."""
    users, counts = np.unique(split.user, return_counts=True)
    return int(users[np.argmax(counts)])


def example_predictions(model, split, user: int, top: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model's predictions for every sample of ``user`` in ``split``, in time order.

    Returns ``samples``, one row per sample (``sample``: its index in the split; ``target``;
    ``correct``: the target ranked first; ``gate``: the share of the probability copied from the
    history; ``target_copied`` and ``target_generated``: the two parts of the target's
    probability; ``kind``: one of :data:`EXAMPLE_KINDS`), and ``places``, one row per
    (sample, rank) of the ``top`` places: ``place``, ``probability``, ``copied``,
    ``generated``, ``is_target``."""
    from nextloc.data.batching import batches

    model.eval()
    index = np.flatnonzero(split.user == user)
    rows, places = [], []
    for start in range(0, len(index), 256):
        chunk = index[start:start + 256]
        parts = mixture_parts(model, next(batches(split, len(chunk), order=chunk)))
        copied, generated = parts["copied"].numpy(), parts["generated"].numpy()
        best = (parts["copied"] + parts["generated"]).topk(top, dim=1).indices.numpy()
        for row, sample in enumerate(chunk):
            target = int(split.target[sample])
            rows.append({"sample": int(sample), "target": target,
                         "correct": bool(best[row, 0] == target),
                         "gate": float(parts["gate"][row]),
                         "target_copied": float(copied[row, target]),
                         "target_generated": float(generated[row, target])})
            places += [{"sample": int(sample), "rank": rank + 1, "place": int(place),
                        "probability": float(copied[row, place] + generated[row, place]),
                        "copied": float(copied[row, place]),
                        "generated": float(generated[row, place]), "is_target": place == target}
                       for rank, place in enumerate(best[row])]
    samples = pd.DataFrame(rows)
    samples["kind"] = np.where(~samples["correct"], EXAMPLE_KINDS[2],
                               np.where(samples["target"] == UNSEEN, EXAMPLE_KINDS[1],
                                        EXAMPLE_KINDS[0]))
    return samples, pd.DataFrame(places)


def choose_examples(samples: pd.DataFrame) -> pd.DataFrame:
    """The worked examples: for each of :data:`EXAMPLE_KINDS` in turn, the earliest sample of
    that kind (rows of :func:`example_predictions`); a kind with no sample is left out."""
    first = samples.groupby("kind", sort=False).head(1).set_index("kind")
    return first.reindex([kind for kind in EXAMPLE_KINDS if kind in first.index]).reset_index()


def example_places(split, sample: int, staypoints: pd.DataFrame,
                   locations: pd.DataFrame | None) -> pd.DataFrame:
    """Where the stays of one sample were: a row per history stay (oldest first, ``role``
    "history") and one for the target (``role`` "target"), with the class the model sees
    (``place``: 1 for places unseen in training), the dataset's ``location_id``, ``lon`` and
    ``lat`` (NaN without a locations file), and ``visits``, the history's stays at that place.

    The raw ids come from the staypoints: a sample's history is the stays of the same user and
    split just before its target (:func:`nextloc.data.split.make_samples`), so places unseen in
    training get a position too."""
    from nextloc.data.split import split_and_encode
    from nextloc.data.locations import coordinates_for

    frame = split_and_encode(staypoints)
    row = int(np.flatnonzero(frame["id"].to_numpy() == split.staypoint_id[sample])[0])
    rows = frame.iloc[row - int(split.lengths[sample]):row + 1]
    steps = slice(split.offsets[sample], split.offsets[sample + 1])
    if not np.array_equal(rows["location"].to_numpy(),
                          np.append(split.location[steps], split.target[sample])):
        raise ValueError(f"sample {sample}: the staypoints do not give this sample's history")
    ids = rows["location_id"].to_numpy(np.int64)
    lon, lat = (coordinates_for(ids, locations).T if locations is not None
                else np.full((2, len(ids)), np.nan))
    places = pd.DataFrame({"role": ["history"] * (len(rows) - 1) + ["target"],
                           "place": rows["location"].to_numpy(), "location_id": ids,
                           "lon": lon, "lat": lat})
    history = places["role"] == "history"
    visits = places[history].groupby("location_id").size()
    return places.assign(visits=places["location_id"].map(visits).fillna(0).astype(int))


def example_sentence(example, places: pd.DataFrame, top: pd.DataFrame) -> str:
    """One sentence (MyST markdown) on a worked example: a row (``itertuples``) of
    :func:`choose_examples`, its :func:`example_places` and its rows of the ``places`` frame of
    :func:`example_predictions`."""
    history, target = places[places["role"] == "history"], places.iloc[-1]
    first = top.iloc[0]

    def name(place: int) -> str:
        return "the unseen class" if place == UNSEEN else f"place {place}"

    said = (f"**{example.kind}** (test sample {example.sample}): the user went to "
            + (f"place {target.place}, " + (f"visited {target.visits} times in" if target.visits
                                             else "not in") + " the 7-day history"
               if target.place != UNSEEN else
               f"a place not visited in the training period (location {target.location_id}, "
               + ("also" if target.visits else "not") + " in the 7-day history)")
            + f"; the model ranks {name(int(first.place))} first with "
            f"{100 * first.probability:.2f} %, {100 * first.copied / first.probability:.2f} % of "
            f"it copied from the history")
    if example.correct and target.place == UNSEEN:
        new_ids = sorted(set(history.loc[history["place"] == UNSEEN, "location_id"]))
        said += (f" (from its stays at {', '.join(f'location {i}' for i in new_ids)}, "
                 + ("among them the true one" if target.location_id in new_ids
                    else "not the true one, which the benchmark still counts as right") + ")")
    elif not example.correct:
        rank = top.loc[top["is_target"], "rank"]
        said += (f"; the true place is ranked {int(rank.iloc[0])}" if len(rank)
                 else "; the true place is not in its top 5")
    return said + f". In all, {100 * example.gate:.2f} % of its probability was copied."
