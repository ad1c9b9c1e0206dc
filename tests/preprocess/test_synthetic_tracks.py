"""The generated Geolife-like tracks of ``nextloc benchmark preprocess``: the release's layout,
a fix a line, and stays that the relaxed pipeline turns into a dataset."""
from __future__ import annotations

import json

from nextloc.cli import main
from nextloc.preprocess.scaling import RELAXED
from nextloc.preprocess.synthetic_tracks import HEADER, write_tracks


def test_generated_tracks_have_geolifes_layout_and_preprocess(tmp_path, capsys):
    written = write_tracks(tmp_path / "raw", users=3, days=10)
    files = sorted((tmp_path / "raw").glob("*/Trajectory/*.plt"))
    assert [path.parent.parent.name for path in files[::10]] == ["000", "001", "002"]
    assert len(files) == 30
    assert sum(len(path.read_text().splitlines()) - 6 for path in files) == written
    assert files[0].read_text().startswith(HEADER)
    assert write_tracks(tmp_path / "again", users=3, days=10) == written  # seeded
    flags = [item for name, value in RELAXED.items()
             for item in (f"--{name.replace('_', '-')}", str(value))]
    assert main(["preprocess", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                 "--workers", "1", "--quiet", "--json", *flags]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["gps_points"] == written and counts["users"] == 3
    # home, work and sometimes a third place, every day: a few stays a day per user
    assert 3 * 10 * 2 <= counts["staypoints"] <= 3 * 10 * 5


def test_the_benchmark_command_passes_its_sizes(monkeypatch, capsys):
    from nextloc import benchmarks

    asked = []
    monkeypatch.setattr(benchmarks, "benchmark_preprocess_scaling",
                        lambda *args: asked.append(args) or {"runs": []})
    assert main(["benchmark", "preprocess", "--users", "3", "30", "--two-workers-at", "0"]) == 0
    assert asked == [([3, 30], [1], [])]
    assert main(["benchmark", "preprocess", "--users", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "argument --users: must be at least 1" in err
