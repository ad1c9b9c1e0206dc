"""``nextloc preprocess`` on shards of users: the same dataset for any number of workers (a pool
of processes or a Dask LocalCluster), a failing shard named by its users, a rerun that resumes
from the finished shards, progress counted in shards, and one clear line for a scheduler that
cannot be reached."""
from __future__ import annotations

import json

import pytest

from nextloc.cli import main
from nextloc.preprocess import workers
from nextloc.preprocess.pipeline import OUTPUT_FILES, scratch_folder

from synthetic_tracks import DAYS, HOMES, write_user

SHORT = ["--min-days", str(DAYS - 2), "--quality-window", "0", "--previous-day", "1"]


def same_dataset(first, second) -> None:
    """Every output file byte for byte, preprocess.json but for its seconds."""
    for name in OUTPUT_FILES:
        if name == "preprocess.json":
            a, b = (json.loads((folder / name).read_text()) for folder in (first, second))
            a.pop("seconds"), b.pop("seconds")
            assert a == b
        else:
            assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.fixture
def raw(tmp_path):
    for user in HOMES:
        write_user(tmp_path / "raw", user)
    return tmp_path / "raw"


def preprocess(raw, out, *flags) -> int:
    return main(["preprocess", str(raw), "--out", str(out), "--quiet", *SHORT, *flags])


@pytest.mark.slow  # starts worker processes
def test_the_dataset_is_the_same_on_a_dask_local_cluster(raw, tmp_path):
    assert preprocess(raw, tmp_path / "one", "--workers", "1", "--shard-users", "1") == 0
    assert preprocess(raw, tmp_path / "dask", "--scheduler", "local", "--workers", "2",
                      "--shard-users", "1") == 0
    same_dataset(tmp_path / "one", tmp_path / "dask")


def damage(raw) -> None:
    track = sorted((raw / "002" / "Trajectory").glob("*.plt"))[3]
    track.write_bytes(track.read_bytes() + b"\xff\xfe\x00 not a fix\n")


def test_a_damaged_file_names_its_shard_and_file_and_a_rerun_resumes(raw, tmp_path, capsys,
                                                                      monkeypatch):
    out = tmp_path / "out"
    damage(raw)
    assert preprocess(raw, out, "--workers", "1", "--shard-users", "1") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "shard 2 of 2 (users 002) failed" in err
    assert "002/Trajectory" in err and "cannot read it as a Geolife .plt file" in err
    assert "1 finished shard(s) kept" in err and not out.exists()
    scratch = scratch_folder(out)
    # plain tables and counts, never pickles
    assert {path.suffix for path in scratch.iterdir()} == {".csv", ".json"}

    # an unreachable scheduler is one line too, and leaves the finished shard where it was
    saved = sorted(path.name for path in scratch.iterdir())
    assert preprocess(raw, out, "--scheduler", "tcp://127.0.0.1:9", "--shard-users", "1") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert sorted(path.name for path in scratch.iterdir()) == saved

    write_user(raw, 2)  # repaired; user 001's files are untouched
    computed = []
    run_one = workers.run_one
    monkeypatch.setattr(workers, "run_one",
                        lambda folder, users, config: computed.append(users) or
                        run_one(folder, users, config))
    assert preprocess(raw, out, "--workers", "1", "--shard-users", "1") == 0
    assert computed == [["002"]]  # user 001's shard was read back, not computed again
    assert not scratch.exists()  # deleted once the dataset is written
    assert preprocess(raw, tmp_path / "fresh", "--workers", "1", "--shard-users", "1") == 0
    same_dataset(out, tmp_path / "fresh")


def test_the_progress_bar_counts_shards(raw, tmp_path, capsys):
    assert main(["preprocess", str(raw), "--out", str(tmp_path / "out"), *SHORT,
                 "--workers", "1", "--shard-users", "1"]) == 0
    err = capsys.readouterr().err
    assert "per-user steps" in err and "2/2" in err and "shard/s" in err


@pytest.mark.parametrize("flags, message", [
    (["--workers", "0"], "argument --workers: must be at least 1"),
    (["--shard-users", "0"], r"['shard_users'] out of range"),
])
def test_bad_worker_options_are_one_clear_line(raw, tmp_path, capsys, flags, message):
    assert preprocess(raw, tmp_path / "out", *flags) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


@pytest.mark.slow  # starts worker processes
def test_a_shard_failing_in_a_worker_process_is_named_too(raw, tmp_path, capsys):
    damage(raw)
    assert preprocess(raw, tmp_path / "out", "--workers", "2", "--shard-users", "1") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "shard 2 of 2 (users 002) failed" in err and "1 finished shard(s) kept" in err


def test_a_shard_key_follows_the_per_user_options_users_and_files(raw):
    from nextloc.preprocess.config import PreprocessConfig
    from nextloc.preprocess.shards import plan_shards

    def keys(users=("001", "002"), **options):
        return [shard.key for shard in plan_shards(raw, list(users),
                                                    PreprocessConfig(shard_users=1, **options))]

    assert keys() == keys(epsilon=50, min_days=3, n_jobs=2)  # global or later steps only
    assert keys() != keys(dist_threshold=100)
    assert keys(users=("001",)) == keys()[:1]
    before = keys()
    write_user(raw, 2)  # the same fixes written again: newer files
    after = keys()
    assert after[0] == before[0] and after[1] != before[1]


def test_a_damaged_saved_shard_is_one_clear_error(tmp_path):
    from nextloc.core.errors import DataError
    from nextloc.preprocess.shards import Scratch, Shard

    scratch, shard = Scratch(tmp_path), Shard(0, ["001"], "abc")
    (tmp_path / "abc.json").write_text("{not json")
    with pytest.raises(DataError, match="the saved shard abc cannot be read .*delete the folder"):
        scratch.load(shard)
