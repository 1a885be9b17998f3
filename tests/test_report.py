"""The results tables of README.md and docs/*.md are rendered from metrics/*.json (carremoval.report): the committed
tables must equal a fresh rendering, and a metric the tables need must never go missing silently."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from carremoval import report
from carremoval.report import Metrics, MissingMetric, documents, render_text

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("document", documents(REPO), ids=lambda path: str(path.relative_to(REPO)))
def test_the_committed_tables_are_those_of_the_metrics(document):
    stale = report.stale_blocks(document, Metrics(REPO))
    assert not stale, (f"{document.relative_to(REPO)}: the results blocks {', '.join(stale)} differ from "
                       "metrics/*.json; run `make report` (python -m carremoval.report) and commit the result")


def test_every_table_is_shown_somewhere():
    shown = {name for path in documents(REPO) for name in report.block_names(path.read_text(encoding="utf-8"))}
    assert shown == set(report.RENDERERS)


def test_the_readme_shows_the_targets():
    assert "targets" in report.block_names((REPO / "README.md").read_text(encoding="utf-8"))


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """A repository with a copy of the metrics and a document holding every block, empty."""
    shutil.copytree(REPO / "metrics", tmp_path / "metrics")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    blocks = "".join(f"<!-- results:{name} -->\n<!-- /results:{name} -->\n\ntext {name}\n\n"
                     for name in report.RENDERERS)
    (tmp_path / "README.md").write_text(f"# A title\n\n{blocks}", encoding="utf-8")
    return tmp_path


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_rendering_fills_the_blocks_and_keeps_the_rest(repo_copy):
    text = (repo_copy / "README.md").read_text()
    fresh = render_text(text, Metrics(repo_copy))
    assert fresh.startswith("# A title\n\n<!-- results:targets -->\n| what is measured |")
    assert all(f"text {name}" in fresh for name in report.RENDERERS)
    assert render_text(fresh, Metrics(repo_copy)) == fresh


def test_a_metric_changes_its_table(repo_copy):
    edit_json(repo_copy / "metrics/eval.json", lambda data: data["photos"]["telea"].update(hole_psnr=99.0))
    table = report.RENDERERS["photo"](Metrics(repo_copy))
    assert "| OpenCV Telea | **99.00** |" in table


@pytest.mark.parametrize(("file", "path", "renderer"), [
    ("eval", ["photos", "telea", "hole_psnr"], "photo"),
    ("eval", ["video_ground_truth", "bus", "temporal_generator"], "video_keyframes"),
    ("eval", ["targets", "video_e_warp_ratio"], "targets"),
    ("segmentation", ["davis", "sequences", "bus", "recall"], "segmentation_davis"),
    ("shadow", ["fixed_camera", "psnr_auto"], "shadow"),
    ("train", ["reference", "telea"], "train"),
    ("crawl/motorpage", ["images_kept"], "data"),
])
def test_a_missing_key_is_an_error_naming_the_file_and_the_key(repo_copy, file, path, renderer):
    def drop(data):
        for key in path[:-1]:
            data = data[key]
        del data[path[-1]]

    edit_json(repo_copy / f"metrics/{file}.json", drop)
    with pytest.raises(MissingMetric) as error:
        report.RENDERERS[renderer](Metrics(repo_copy))
    assert f"metrics/{file}.json" in str(error.value) and repr(path[-1]) in str(error.value)


def test_a_missing_metrics_file_is_an_error(repo_copy):
    (repo_copy / "metrics/bench.json").unlink()
    with pytest.raises(MissingMetric, match="bench.json: not found"):
        report.RENDERERS["bench"](Metrics(repo_copy))


def test_a_target_without_a_description_is_an_error(repo_copy):
    edit_json(repo_copy / "metrics/shadow.json",
              lambda data: data["targets"].update(new_target={"ok": True, "detail": "x"}))
    with pytest.raises(MissingMetric, match="new_target"):
        report.RENDERERS["targets"](Metrics(repo_copy))


@pytest.mark.parametrize("text", ["<!-- results:nothing -->\n<!-- /results:nothing -->\n",
                                  "<!-- results:photo -->\nno end\n"])
def test_an_unknown_or_unclosed_block_is_an_error(repo_copy, text):
    with pytest.raises(ValueError, match="doc.md"):
        render_text(text, Metrics(repo_copy), "doc.md")


def test_check_reports_stale_tables_and_the_update_writes_them(repo_copy, monkeypatch, capsys):
    monkeypatch.chdir(repo_copy)
    before = (repo_copy / "README.md").read_text()
    assert report.main(["--check"]) == 1
    assert "README.md: stale: targets, train" in capsys.readouterr().out
    assert (repo_copy / "README.md").read_text() == before
    assert report.main([]) == 0
    assert report.main(["--check"]) == 0
    edit_json(repo_copy / "metrics/eval.json", lambda data: data["photos"].pop("ns"))
    assert report.main([]) == 2
    assert "metrics/eval.json.photos: no key 'ns'" in capsys.readouterr().err
