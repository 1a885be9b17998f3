"""`dvc plots show` with the repository's plot definitions, templates and offline page, on small loss and val CSVs:
the page loads no script from the network, and headless Chromium (offline) draws every chart."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from carremoval.plots_page import MARKER, build_page, write_page
from carremoval.training import LOSS_TERMS

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PLOTS = {"Generator_loss": ("g_total", "g_pix", "g_vgg"), "Adversarial_losses": ("g_adv", "d_real", "d_fake", "d_total"),
         "Val_metrics": ("hole_l1 (lower is better)", "hole_psnr (higher is better)", "ssim (higher is better)")}
VAL_METRICS = ("psnr", "ssim", "hole_psnr", "hole_ssim", "hole_l1", "hole_swd")


def write_metrics(folder: Path, steps: int = 60, every: int = 20) -> None:
    """What the train stage writes: a loss row per step, a val row per evaluation."""
    folder.mkdir(parents=True)
    rows = [",".join(["step", *LOSS_TERMS])]
    rows += [",".join([str(step), *(f"{(index + 1) * (1 + 1 / step):.4f}" for index in range(len(LOSS_TERMS)))])
             for step in range(1, steps + 1)]
    (folder / "train_losses.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    rows = [",".join(["step", *VAL_METRICS])]
    rows += [",".join([str(step), *(f"{index + step / 1000:.4f}" for index in range(len(VAL_METRICS)))])
             for step in range(every, steps + 1, every)]
    (folder / "train_val.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """dvc plots show in a copy of the repository's DVC set-up (dvc.yaml, .dvc/config, .dvc/plots)."""
    root = tmp_path_factory.mktemp("plots")
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root, check=True, timeout=120)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots", ignore=shutil.ignore_patterns("page.html"))
    write_page(root / ".dvc/plots/page.in.html", root / ".dvc/plots/page.html")
    write_metrics(root / "metrics")
    result = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", "out"], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "out" / "index.html"


def test_the_page_template_is_checked():
    with pytest.raises(ValueError, match="VEGA_BUNDLE"):
        build_page("<html>{plot_divs}</html>", "bundle")
    with pytest.raises(ValueError, match="scripts"):
        build_page(f"<html>{MARKER}{{scripts}}{{plot_divs}}</html>", "bundle")
    with pytest.raises(ValueError, match="</script"):
        build_page(f"<html>{MARKER}{{plot_divs}}</html>", "x = '</script>'")
    assert build_page(f"<head>{MARKER}</head>{{plot_divs}}", "var a;") == (
        '<head><script type="text/javascript">var a;</script></head>{plot_divs}')


@pytest.mark.slow
def test_the_plots_page_loads_nothing_from_the_network(page):
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc=", html), "every script is inline"
    assert "cdn.jsdelivr" not in html and "https://cdn" not in html
    assert "window.vegaEmbed" in html and all(f'"{plot}"' in html for plot in PLOTS)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium): "
                                              "cannot check that the plots page draws its charts")
def test_headless_chromium_draws_every_chart_offline(page, tmp_path):
    """The DOM after the page ran: each plot's div holds a Vega SVG with lines that have points and its legend."""
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",  # no network at all
         "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180)
    dom = result.stdout
    assert result.returncode == 0 and "</html>" in dom, result.stderr[-2000:]
    starts = sorted((dom.index(f'id="{plot}"'), plot) for plot in PLOTS)
    for (start, plot), (end, _) in zip(starts, [*starts[1:], (len(dom), "")]):
        chart = dom[start:end]
        assert 'class="marks"' in chart and "<svg" in chart, f"{plot}: no Vega SVG drawn"
        lines = re.findall(r'<g[^>]*class="mark-line role-mark[^"]*"[^>]*>(.*?)</g>', chart, re.S)
        paths = [d for line in lines for d in re.findall(r'<path[^>]*\sd="(M[^"]+)"', line)]
        assert len(paths) >= 2 and all(path.count(",") >= 2 for path in paths), f"{plot}: no lines drawn"
        for text in ("step", *PLOTS[plot]):
            assert f">{text}<" in chart, f"{plot}: {text!r} not shown (axis, legend or panel title)"
