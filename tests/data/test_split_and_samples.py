from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

import nextloc.data.split
from nextloc.data.batching import batches, collate
from nextloc.data.split import (PAD, SPLITS, UNSEEN, STAYPOINTS_FILE, Split, build_dataset,
                          default_data_dir, load_dataset, make_samples, make_samples_by_loop,
                          split_and_encode)


def assert_splits_equal(actual: Split, expected: Split) -> None:
    for field in fields(Split):
        a, b = getattr(actual, field.name), getattr(expected, field.name)
        if a is None or b is None:  # coordinates, when the dataset has none
            assert a is None and b is None, field.name
            continue
        assert a.dtype == b.dtype, field.name
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), field.name


def assert_data_equal(actual, expected) -> None:
    assert (actual.num_locations, actual.num_users, actual.previous_day) == (
        expected.num_locations, expected.num_users, expected.previous_day)
    assert np.array_equal(actual.location_ids, expected.location_ids)
    assert set(actual.splits) == set(expected.splits) == set(SPLITS)
    for name in SPLITS:
        assert_splits_equal(actual.splits[name], expected.splits[name])


# --- the real Geolife data -------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_data():
    data_dir = default_data_dir()
    if not data_dir.is_dir():
        pytest.skip(f"real Geolife data not found at {data_dir}; set NEXTLOC_DATA to the folder "
                    f"holding {STAYPOINTS_FILE} to run these tests")
    # No cache: a module fixture cannot use the per-test cache folder, and the build is fast.
    return load_dataset(data_dir, use_cache=False)


@pytest.mark.slow
def test_real_data_has_the_published_sizes(real_data):
    # Sample counts and classes of the standard split (Hong et al. 2023, previous_day=7).
    assert {name: len(real_data.splits[name]) for name in SPLITS} == {
        "train": 7424, "validation": 3334, "test": 3502}
    assert real_data.num_locations == 1187
    assert real_data.num_users == 45


@pytest.mark.slow
def test_real_train_targets_are_never_unseen_or_padding(real_data):
    assert not np.isin(real_data.splits["train"].target, [PAD, UNSEEN]).any()
    # The unseen class is real in the later splits, so the check above is not vacuous.
    assert (real_data.splits["test"].target == UNSEEN).any()


@pytest.mark.slow
@pytest.mark.parametrize("name", SPLITS)
def test_real_histories_are_long_enough_and_within_the_window(real_data, name):
    split = real_data.splits[name]
    assert split.lengths.min() >= 2
    assert split.days_ago.min() >= 0
    assert split.days_ago.max() <= real_data.previous_day == 7
    assert split.location.min() > PAD  # padding only ever comes from collate
    assert split.location.max() < real_data.num_locations


# --- synthetic data through the real pipeline ------------------------------------------------

def test_tiny_data_is_a_meaningful_fixture(tiny_data):
    # The other tests rely on these: every split populated, unseen ids only after train.
    assert all(len(tiny_data.splits[name]) > 0 for name in SPLITS)
    assert not (tiny_data.splits["train"].target == UNSEEN).any()
    assert (tiny_data.splits["validation"].location == UNSEEN).any()


@pytest.mark.parametrize("previous_day", [1, 3, 7])
def test_vectorized_samples_equal_the_loop_specification(tiny_frames, previous_day):
    staypoints, valid_ids = tiny_frames
    frame = split_and_encode(staypoints)
    for code in range(len(SPLITS)):
        rows = frame[frame["split"] == code]
        expected = make_samples_by_loop(rows, valid_ids, previous_day)
        assert len(expected) > 0  # an empty comparison would prove nothing
        assert_splits_equal(make_samples(rows, valid_ids, previous_day), expected)


@pytest.mark.parametrize("previous_day", [3, 7])
def test_days_ago_stays_within_previous_day(tiny_frames, previous_day):
    data = build_dataset(*tiny_frames, previous_day=previous_day)
    for split in data.splits.values():
        assert split.days_ago.min() >= 0
        assert split.days_ago.max() <= previous_day
        assert split.lengths.min() >= 2


def test_concat_keeps_each_sample_whole_and_in_order(tiny_data):
    train, validation = tiny_data.splits["train"], tiny_data.splits["validation"]
    joined = Split.concat([train, validation])
    assert len(joined) == len(train) + len(validation)
    for part, old in [(train, 0), (validation, 0), (validation, -1)]:
        new = old if part is train else len(train) + old % len(validation)
        old = old % len(part)
        new_steps = slice(joined.offsets[new], joined.offsets[new + 1])
        old_steps = slice(part.offsets[old], part.offsets[old + 1])
        assert np.array_equal(joined.location[new_steps], part.location[old_steps])
        assert np.array_equal(joined.days_ago[new_steps], part.days_ago[old_steps])
        assert joined.target[new] == part.target[old]


def test_collate_pads_to_the_longest_history_of_the_batch(tiny_data):
    split = tiny_data.splits["train"]
    # The shortest samples: their batch must be narrower than the longest history overall.
    index = np.argsort(split.lengths, kind="stable")[:4][::-1]
    lengths = split.lengths[index]
    assert lengths.max() < split.lengths.max()

    batch = collate(split, index)

    assert batch["location"].shape == (4, lengths.max())
    assert batch["mask"].sum(1).tolist() == lengths.tolist()
    assert batch["length"].tolist() == lengths.tolist()
    for row, sample in enumerate(index):
        real = slice(split.offsets[sample], split.offsets[sample + 1])
        n = lengths[row]
        assert batch["mask"][row, :n].all() and not batch["mask"][row, n:].any()
        for name in nextloc.data.split.STEP_FIELDS:
            assert batch[name][row, :n].tolist() == getattr(split, name)[real].tolist(), name
            assert (batch[name][row, n:] == 0).all(), name
    assert batch["user"].tolist() == split.user[index].tolist()
    assert batch["target"].tolist() == split.target[index].tolist()


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_shuffled_batches_yield_every_sample_exactly_once(tiny_data, batch_size):
    split = tiny_data.splits["train"]
    # Tag each sample with its index in the user field, which collate passes through.
    tagged = replace(split, user=np.arange(len(split), dtype=np.int64))
    seen = []
    for batch in batches(tagged, batch_size, shuffle=True, rng=np.random.default_rng(0)):
        assert len(batch["user"]) <= batch_size
        # Each sample must still carry its own history after the length bucketing.
        for tag, length in zip(batch["user"].tolist(), batch["length"].tolist()):
            assert length == split.lengths[tag]
        seen.extend(batch["user"].tolist())
    assert sorted(seen) == list(range(len(split)))


def test_unshuffled_batches_keep_the_split_order(tiny_data):
    split = tiny_data.splits["test"]
    targets = [t for batch in batches(split, 8) for t in batch["target"].tolist()]
    assert targets == split.target.tolist()


# --- the npz cache ---------------------------------------------------------------------------

def test_second_load_reads_the_cache_and_gives_identical_arrays(tiny_data_dir, tiny_data,
                                                                nextloc_cache, monkeypatch):
    first = load_dataset(tiny_data_dir)
    cached = list(nextloc_cache.glob("samples-*.npz"))
    assert len(cached) == 1
    assert sorted(p.name for p in nextloc_cache.iterdir()) == [cached[0].name]  # no temp left

    def no_rebuild(*args, **kwargs):
        raise AssertionError("load_dataset rebuilt the samples instead of reading its cache")

    monkeypatch.setattr(nextloc.data.split, "build_dataset", no_rebuild)
    second = load_dataset(tiny_data_dir)

    assert_data_equal(first, tiny_data)
    assert_data_equal(second, tiny_data)


def test_cache_holds_no_pickled_objects(tiny_data_dir, nextloc_cache):
    load_dataset(tiny_data_dir)
    (cache_file,) = nextloc_cache.glob("samples-*.npz")
    with np.load(cache_file, allow_pickle=False) as stored:
        for key in stored.files:
            # Reading an object array raises here when pickles are refused.
            assert stored[key].dtype != object, key


def test_cache_is_keyed_by_previous_day_and_file_contents(tiny_data_dir, tiny_frames,
                                                         nextloc_cache):
    load_dataset(tiny_data_dir)
    other_window = load_dataset(tiny_data_dir, previous_day=5)
    assert other_window.previous_day == 5
    assert len(list(nextloc_cache.glob("samples-*.npz"))) == 2

    staypoints, valid_ids = tiny_frames
    fewer_valid = valid_ids[valid_ids % 3 != 0]
    (tiny_data_dir / nextloc.data.split.VALID_IDS_FILE).write_text(
        "id\n" + "\n".join(map(str, fewer_valid)) + "\n")
    changed = load_dataset(tiny_data_dir)
    assert len(list(nextloc_cache.glob("samples-*.npz"))) == 3
    assert_data_equal(changed, build_dataset(staypoints, fewer_valid, previous_day=7))


def test_use_cache_false_writes_nothing(tiny_data_dir, nextloc_cache):
    load_dataset(tiny_data_dir, use_cache=False)
    assert list(nextloc_cache.iterdir()) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing_array"])
def test_a_damaged_cache_is_rebuilt(tiny_data_dir, tiny_data, nextloc_cache, damage):
    # Issue 9, defect 6: a cache that cannot be read used to fail every later command.
    load_dataset(tiny_data_dir)
    (cache_file,) = nextloc_cache.glob("samples-*.npz")
    content = cache_file.read_bytes()
    if damage == "garbage":
        cache_file.write_bytes(b"not an npz file")
    elif damage == "truncated":
        cache_file.write_bytes(content[:len(content) // 2])
    else:
        with np.load(cache_file) as stored:
            arrays = {k: stored[k] for k in stored.files if k != "test.target"}
        np.savez_compressed(cache_file, **arrays)

    assert_data_equal(load_dataset(tiny_data_dir), tiny_data)
    # The rebuilt file replaced the damaged one and reads back without a rebuild.
    assert [p.name for p in nextloc_cache.iterdir()] == [cache_file.name]
    with np.load(cache_file, allow_pickle=False) as stored:
        assert "test.target" in stored.files


def test_two_processes_filling_a_cold_cache_do_not_collide(tiny_data_dir, tiny_data,
                                                           nextloc_cache, monkeypatch):
    # Issue 9, defect 6: both writers used one temporary name, so the second rename failed.
    # Replay the race deterministically: after this process has written its temporary file,
    # another process saves the same cache completely, then this process renames its file.
    real_savez = np.savez_compressed
    other_process_done = []
    cache_file = nextloc_cache / f"samples-{nextloc.data.split._cache_key(tiny_data_dir, 7)}.npz"

    def savez_then_the_other_process_saves(file, *args, **kwargs):
        real_savez(file, *args, **kwargs)
        if not other_process_done:
            other_process_done.append(True)
            nextloc.data.split._save_cache(cache_file, tiny_data)

    monkeypatch.setattr(np, "savez_compressed", savez_then_the_other_process_saves)
    assert_data_equal(load_dataset(tiny_data_dir), tiny_data)
    assert other_process_done
    assert list(nextloc_cache.iterdir()) == [cache_file]  # no temporary file left
    monkeypatch.undo()
    assert_data_equal(nextloc.data.split._load_cache(cache_file), tiny_data)
