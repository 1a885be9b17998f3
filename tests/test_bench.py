"""The video and photo benchmarks' quick runs end to end (`python -m carremoval.bench --only video photo --quick`):
every row is measured and finite, and the targets are judged. The figures themselves are not asserted: speed lives in
`make bench`, not in tests."""
from __future__ import annotations

import math

import pytest

from carremoval.bench import photo, video

pytestmark = pytest.mark.slow


def test_the_quick_video_benchmark_measures_every_row():
    section = video.run(quick=True)
    rows = {row.what: row.value for row in section.rows}
    for label in ("432x240", "854x480"):
        assert rows[f"remove end to end {label}"] > 0 and rows[f"decode+encode alone {label}"] > 0
    assert rows["remove end to end 432x240, RAFT-small flow"] > 0
    assert rows["remove end to end 432x240, textured keyframes"] > 0
    assert rows["remove end to end 432x240, --masks auto"] > 0
    assert all(math.isfinite(value) for value in rows.values())
    assert [check.target.split(" ")[0] for check in section.checks] == [">=", ">=", ">=", "peak"]


def test_the_photo_benchmark_times_the_fill_beside_patchmatch():
    section = photo.run(quick=True)
    rows = {row.what: row for row in section.rows}
    assert set(rows) == {f"photo fill: {name}" for name in ("textured", "patchmatch", "generator", "telea")}
    assert all(row.value > 0 for row in rows.values())
    assert "1732x1155, hole 5.0%" in rows["photo fill: textured"].note
    assert len(section.checks) == 1 and "PatchMatch" in section.checks[0].detail


def test_bench_inputs_are_made_once_per_size_and_count(tmp_path):
    first = video.make_input(tmp_path, (96, 64), 5)
    assert video.make_input(tmp_path, (96, 64), 5) == first
    assert len(list(first[1].glob("*.png"))) == 5
