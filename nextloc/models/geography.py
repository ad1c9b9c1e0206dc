"""Geography for the models (no model is registered here): how far each candidate location is
from the current place, and clusters of locations, from the (lon, lat) of every class that the
training split carries (``Split.coordinates``, see :mod:`nextloc.data.locations`).

Two model options use it, in the baseline and the pointer:

- ``distance``: the haversine distance from the current place (the last history step) to each
  candidate, in 16 buckets: 0 when either end has no coordinates (padding, the unseen class 1,
  a place missing from the locations file), 1 for the current place itself, else
  ``2 + floor(log2(1 + d / 100 m))``, capped at 15 (another place < 100 m away, 100-300 m,
  300-700 m, ..., 410-820 km, beyond). The generation logits get
  ``distance_bias(h)[bucket]``, a learned bias per bucket that depends on the history summary
  h (going far may be likely from one place and unlikely from another); its weights start at
  zero, so training starts from the plain model. Distances are computed per batch
  ([B, N] from N coordinates), never as an N x N table.
- ``clusters``: K clusters of the locations by k-means on their coordinates (fixed seed 0,
  k-means++ start, in km on an equirectangular projection), so every seed of an experiment sees
  the same clusters. Cluster ids: 0 padding, 1 no coordinates (the unseen class), 2..K+1.
  Each history step gets the embedding of its location's cluster.

The coordinates and cluster ids are persistent buffers, filled by ``fit_statistics`` and saved
in checkpoints, so a loaded model needs no data. Before ``fit_statistics`` every distance is
"unknown" and every location is in the unknown cluster: the options are then no-ops.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nextloc.core.errors import ConfigError, DataError
from nextloc.models.layers import last_step, log_bucket

DISTANCE_BUCKETS = 16       # 0: unknown, 1: the same place, 2..15: log2 steps of 100 m
UNKNOWN_DISTANCE, SAME_PLACE = 0, 1
BUCKET_UNIT_KM = 0.1
EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE = 111.195     # of latitude (and of longitude at the equator)
NO_CLUSTER, UNKNOWN_CLUSTER = 0, 1


def haversine_km(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Great-circle distance between (lon, lat) points in degrees, [..., 2] each, broadcast."""
    lon_a, lat_a = torch.deg2rad(a).unbind(-1)
    lon_b, lat_b = torch.deg2rad(b).unbind(-1)
    h = (torch.sin((lat_b - lat_a) / 2) ** 2
         + torch.cos(lat_a) * torch.cos(lat_b) * torch.sin((lon_b - lon_a) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * torch.asin(torch.sqrt(h.clamp(0, 1)))


def distance_bucket(km: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Bucket of each distance (see the module docstring): NaN (unknown) -> 0, the same place
    (``same``: the same location id) -> 1, other places by log distance -> 2..15."""
    bucket = 2 + log_bucket(torch.nan_to_num(km, nan=0.0) / BUCKET_UNIT_KM,
                            DISTANCE_BUCKETS - 2)
    return bucket.masked_fill(same, SAME_PLACE).masked_fill(torch.isnan(km), UNKNOWN_DISTANCE)


def kmeans(points: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """Labels 0..k'-1 of [n, 2] points (Lloyd's algorithm from a k-means++ start), where
    k' = min(k, number of distinct points). Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    k = min(k, len(np.unique(points, axis=0)))
    centers = [points[rng.integers(len(points))]]
    nearest = ((points - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        centers.append(points[rng.choice(len(points), p=nearest / nearest.sum())])
        nearest = np.minimum(nearest, ((points - centers[-1]) ** 2).sum(1))
    centers = np.array(centers)
    labels = np.full(len(points), -1)
    for _ in range(iterations):
        new = ((points[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
        if np.array_equal(new, labels):
            break
        labels = new
        for cluster in np.unique(labels):
            centers[cluster] = points[labels == cluster].mean(0)
    return labels


def cluster_classes(coordinates: np.ndarray, k: int) -> np.ndarray:
    """int64 [N] cluster id of every class: 0 padding, 1 no coordinates, 2.. the k-means
    clusters of the classes that have coordinates."""
    known = ~np.isnan(coordinates).any(1)
    known[0] = False
    lon, lat = coordinates[known, 0], coordinates[known, 1]
    planar = np.stack([lon * np.cos(np.deg2rad(np.median(lat))), lat], 1) * KM_PER_DEGREE
    ids = np.full(len(coordinates), UNKNOWN_CLUSTER, dtype=np.int64)
    ids[0] = NO_CLUSTER
    if known.any():
        ids[known] = 2 + kmeans(planar, k)
    return ids


class Geography(nn.Module):
    """The coordinates [N, 2] (with ``distance``) and cluster ids [N] (with ``clusters``) of
    every class, as buffers filled by :meth:`fit`."""

    def __init__(self, num_locations: int, distance: bool, clusters: int):
        super().__init__()
        self.num_locations, self.clusters = num_locations, clusters
        if distance:
            self.register_buffer("coordinates", torch.full((num_locations, 2), float("nan")))
        if clusters:
            self.register_buffer("cluster_of", torch.full((num_locations,), UNKNOWN_CLUSTER))

    def fit(self, train, owner: str) -> None:
        """Take the coordinates of the training split's classes; cluster them."""
        coordinates = getattr(train, "coordinates", None)
        if coordinates is None:
            raise DataError(f"{owner}: the options distance / clusters need the coordinates of "
                            f"the locations, and this dataset has none; put a locations file "
                            f"(locations_geolife.csv: id, center as WKT 'POINT (lon lat)') in "
                            f"the data folder.")
        if coordinates.shape != (self.num_locations, 2):
            raise DataError(f"{owner}: coordinates of shape {coordinates.shape} do not match "
                            f"the model's locations.")
        if hasattr(self, "coordinates"):
            self.coordinates.copy_(torch.from_numpy(coordinates))
        if self.clusters:
            self.cluster_of.copy_(torch.from_numpy(cluster_classes(coordinates, self.clusters)))

    def candidate_buckets(self, current: torch.Tensor) -> torch.Tensor:
        """[B, N] distance bucket from each sample's current place to every class."""
        classes = torch.arange(self.num_locations, device=current.device)
        return distance_bucket(haversine_km(self.coordinates[current][:, None],
                                            self.coordinates[None]),
                               classes[None] == current[:, None])

    def step_buckets(self, location: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """[B, L] distance bucket from each sample's current place to each history step."""
        return distance_bucket(haversine_km(self.coordinates[current][:, None],
                                            self.coordinates[location]),
                               location == current[:, None])


def add_geography(model: nn.Module, num_locations: int, dim: int, distance: bool,
                  clusters: int) -> None:
    """Give ``model`` the attributes ``geography``, ``distance_bias`` (Linear dim -> 16, zero
    weights) and ``cluster`` (Embedding K + 2) of its options; None for those that are off.
    Call it after every other module is created, so that a model without these options keeps
    its seeded initialisation and its checkpoint names."""
    if isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 0:
        raise ConfigError(f"clusters must be 0 (off) or a number of clusters, got {clusters}")
    model.geography = Geography(num_locations, distance, clusters) if distance or clusters else None
    model.distance_bias = nn.Linear(dim, DISTANCE_BUCKETS) if distance else None
    if distance:
        nn.init.zeros_(model.distance_bias.weight)
        nn.init.zeros_(model.distance_bias.bias)
    model.cluster = nn.Embedding(clusters + 2, dim, padding_idx=NO_CLUSTER) if clusters else None


def distance_logits(model: nn.Module, summary: torch.Tensor,
                    batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, N] learned bias of each candidate's distance bucket from the current place."""
    current = last_step(batch["location"], batch["length"])
    return model.distance_bias(summary).gather(1, model.geography.candidate_buckets(current))


def cluster_embedding(model: nn.Module, location: torch.Tensor) -> torch.Tensor:
    """[..., dim] embedding of the cluster of each location id."""
    return model.cluster(model.geography.cluster_of[location])
