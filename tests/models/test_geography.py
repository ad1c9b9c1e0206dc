"""Coordinates of the locations (data side) and the geographic options of the baseline and the
pointer (distance buckets, location clusters)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_locations
from nextloc.data.batching import collate
from nextloc.data.split import PAD, SPLITS, UNSEEN, default_data_dir, load_dataset, split_and_encode
from nextloc.core.errors import ConfigError, DataError
from nextloc.data.locations import LOCATIONS_FILE, load_locations
from nextloc.models import PARAMETER_BUDGET, build_model, count_parameters
from nextloc.models.geography import (Geography, cluster_classes, distance_bucket, haversine_km,
                                      kmeans)

SMALL = {"dim": 16, "layers": 1, "heads": 2, "feedforward": 32}
GEO_OPTIONS = [{"distance": True}, {"clusters": 3}, {"distance": True, "clusters": 100}]


# --- data: raw ids and coordinates of the encoded classes ------------------------------------

def test_location_ids_map_every_class_back_to_its_raw_id(tiny_frames, tiny_data):
    staypoints, _ = tiny_frames
    raw_of_staypoint = staypoints.set_index("id")["location_id"]
    ids = tiny_data.location_ids
    assert len(ids) == tiny_data.num_locations and ids[PAD] == ids[UNSEEN] == -1
    assert len(set(ids[2:].tolist())) == len(ids) - 2  # one raw id per class
    for name in SPLITS:
        split = tiny_data.splits[name]
        known = split.target >= 2
        raw = raw_of_staypoint.loc[split.staypoint_id[known]].to_numpy()
        assert np.array_equal(ids[split.target[known]], raw)
    frame = split_and_encode(staypoints)
    assert np.array_equal(ids[2:], np.unique(frame.loc[frame["split"] == 0, "location_id"]))


@pytest.mark.parametrize("layout", ["wkt", "lon_lat"])
def test_coordinates_are_loaded_per_class_and_cached_ids_agree(write_csvs, tiny_frames,
                                                               layout):
    locations = make_locations()
    written = (locations.drop(columns=["lon", "lat"]) if layout == "wkt"
               else locations[["id", "lon", "lat"]])
    folder = write_csvs(*tiny_frames, locations=written)
    first, cached = load_dataset(folder), load_dataset(folder)
    for data in (first, cached):
        coordinates = data.coordinates
        assert coordinates.shape == (data.num_locations, 2)
        assert np.isnan(coordinates[[PAD, UNSEEN]]).all()
        expected = locations.set_index("id").loc[data.location_ids[2:], ["lon", "lat"]]
        assert np.allclose(coordinates[2:], expected.to_numpy(), atol=1e-9)
        assert all(split.coordinates is coordinates for split in data.splits.values())


def test_without_a_locations_file_there_are_no_coordinates(tiny_data_dir):
    data = load_dataset(tiny_data_dir)
    assert data.coordinates is None and data.location_ids is not None


def test_a_bad_locations_file_is_refused_by_name(write_csvs, tiny_frames):
    locations = make_locations().drop(columns=["lon", "lat"])
    locations.loc[3, "center"] = "POINT (116.3)"
    folder = write_csvs(*tiny_frames, locations=locations)
    with pytest.raises(DataError, match=f"{LOCATIONS_FILE}: data rows \\[3\\]"):
        load_dataset(folder)


@pytest.mark.slow
def test_real_locations_cover_every_class():
    data_dir = default_data_dir()
    if not (data_dir / LOCATIONS_FILE).is_file():
        pytest.skip(f"{data_dir / LOCATIONS_FILE} not found")
    data = load_dataset(data_dir, use_cache=False)
    assert data.num_locations == 1187
    assert np.isfinite(data.coordinates[2:]).all()
    assert len(load_locations(data_dir)) == 2049


# --- the geometry ----------------------------------------------------------------------------

def test_haversine_and_buckets():
    beijing, shanghai = torch.tensor([116.4074, 39.9042]), torch.tensor([121.4737, 31.2304])
    assert haversine_km(beijing, shanghai).item() == pytest.approx(1067, rel=0.01)
    east = beijing + torch.tensor([0.01, 0.0])  # ~853 m at this latitude
    assert haversine_km(beijing, east).item() == pytest.approx(0.853, rel=0.01)
    km = torch.tensor([float("nan"), 0.0, 0.0, 0.05, 0.1, 0.29, 0.31, 0.85, 500.0, 1067.0])
    same = torch.tensor([True, True, False, False, False, False, False, False, False, False])
    assert distance_bucket(km, same).tolist() == [0, 1, 2, 2, 3, 3, 4, 5, 14, 15]


def test_candidate_and_step_buckets(tiny_geo_data):
    geography = Geography(tiny_geo_data.num_locations, distance=True, clusters=0)
    geography.fit(tiny_geo_data.splits["train"], "test")
    current = torch.tensor([2, 5, UNSEEN])
    buckets = geography.candidate_buckets(current)
    assert buckets.shape == (3, tiny_geo_data.num_locations)
    assert buckets[:, [PAD, UNSEEN]].eq(0).all() and buckets[2].eq(0).all()
    assert buckets[0, 2] == buckets[1, 5] == 1 and buckets[0, 3:].ge(2).all()
    steps = torch.tensor([[3, 2, 0], [5, 1, 2], [2, 3, 4]])
    assert torch.equal(geography.step_buckets(steps, current),
                       torch.stack([buckets[row, steps[row]] for row in range(3)]))


def test_kmeans_is_deterministic_and_finds_separate_blobs():
    rng = np.random.default_rng(1)
    centers = np.array([[0, 0], [50, 0], [0, 50]])
    points = np.concatenate([c + rng.normal(0, 1, (30, 2)) for c in centers])
    labels = kmeans(points, 3)
    assert np.array_equal(labels, kmeans(points, 3))
    for blob in range(3):
        assert len(set(labels[blob * 30:(blob + 1) * 30].tolist())) == 1
    assert len(set(labels.tolist())) == 3
    assert len(set(kmeans(points[:2], 5).tolist())) == 2  # never more clusters than points


def test_cluster_ids_reserve_padding_and_unknown():
    coordinates = np.array([[np.nan, np.nan], [np.nan, np.nan], [116.3, 39.9], [116.31, 39.9],
                            [121.5, 31.2], [np.nan, np.nan]])
    ids = cluster_classes(coordinates, 2)
    assert ids[0] == 0 and ids[1] == 1 and ids[5] == 1
    assert ids[2] == ids[3] != ids[4] and min(ids[2:5]) >= 2


# --- the model options -----------------------------------------------------------------------

def geo_model(name: str, data, **options):
    torch.manual_seed(0)
    model = build_model(name, data.num_locations, data.num_users,
                        **(SMALL if name == "baseline" else {"dim": 16, "feedforward": 32}),
                        **options)
    model.fit_statistics(data.splits["train"])
    return model


@pytest.mark.parametrize("options", GEO_OPTIONS, ids=str)
@pytest.mark.parametrize("name", ["baseline", "pointer", "pointer_ensemble"])
def test_geographic_options_score_and_learn(name, options, tiny_geo_data):
    model = geo_model(name, tiny_geo_data, **options).eval()
    split = tiny_geo_data.splits["test"]
    batch = collate(split, np.arange(len(split)))
    with torch.no_grad():
        scores = model(batch)
    assert scores.shape == (len(split), tiny_geo_data.num_locations)
    assert torch.isfinite(scores).all()
    assert torch.allclose(scores.exp().sum(1), torch.ones(len(split)), atol=1e-4)

    model.train()
    train = tiny_geo_data.splits["train"]
    model.training_loss(collate(train, np.arange(16))).backward()
    new = [p for n, p in model.named_parameters()
           if any(part in n for part in ("distance", "cluster"))]
    assert new and all(p.grad is not None and p.grad.abs().sum() > 0 for p in new)


@pytest.mark.parametrize("name", ["baseline", "pointer"])
def test_distance_starts_from_the_plain_model(name, tiny_geo_data):
    # Same seeded initialisation of the shared weights, zero distance weights: same scores.
    plain = geo_model(name, tiny_geo_data).eval()
    with_distance = geo_model(name, tiny_geo_data, distance=True).eval()
    batch = collate(tiny_geo_data.splits["test"], np.arange(20))
    with torch.no_grad():
        assert torch.allclose(plain(batch), with_distance(batch), atol=1e-6)
    assert set(plain.state_dict()) < set(with_distance.state_dict())


@pytest.mark.parametrize("options", GEO_OPTIONS, ids=str)
def test_geographic_options_need_coordinates(tiny_data, options):
    model = build_model("pointer", tiny_data.num_locations, tiny_data.num_users, **options)
    with pytest.raises(DataError, match="coordinates"):
        model.fit_statistics(tiny_data.splits["train"])


@pytest.mark.parametrize("clusters", [-1, True, 2.5])
def test_a_bad_number_of_clusters_is_refused(clusters):
    with pytest.raises(ConfigError, match="clusters"):
        build_model("baseline", 20, 3, clusters=clusters)


def test_buffers_travel_with_the_state_dict(tiny_geo_data):
    model = geo_model("pointer", tiny_geo_data, distance=True, clusters=3).eval()
    fresh = build_model("pointer", tiny_geo_data.num_locations, tiny_geo_data.num_users,
                        dim=16, feedforward=32, distance=True, clusters=3).eval()
    fresh.load_state_dict(model.state_dict())  # no fit_statistics: everything from the state
    batch = collate(tiny_geo_data.splits["test"], np.arange(20))
    with torch.no_grad():
        assert torch.equal(model(batch), fresh(batch))


@pytest.mark.parametrize("name, options, expected", [
    ("baseline", {"distance": True}, 481_483),
    ("baseline", {"clusters": 100}, 489_035),
    ("baseline", {"clusters": 200}, 497_835),
    ("pointer", {"dim": 64, "distance": True}, 196_340),
    ("pointer", {"dim": 64, "clusters": 200}, 207_204),
])
def test_geographic_variants_fit_the_budget(name, options, expected):
    model = build_model(name, 1187, 45, over_budget_ok=True, **options)
    assert count_parameters(model) == expected < PARAMETER_BUDGET
