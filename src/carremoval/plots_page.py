"""The HTML page template of `dvc plots show` with Vega, Vega-Lite and Vega-Embed inlined, so the plots draw offline.

DVC's own page loads the three libraries from a CDN (blank without internet). `.dvc/config` points
`plots.html_template` at `.dvc/plots/page.html`, which this module makes from `.dvc/plots/page.in.html` by
putting the libraries in place of its `<!-- VEGA_BUNDLE -->` line. They come from the vl-convert-python package
(`vl_convert.javascript_bundle`), installed by requirements.txt. `make install` and `make plots` run it.

    python -m carremoval.plots_page [--template .dvc/plots/page.in.html] [--out .dvc/plots/page.html]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from carremoval.io import atomic_file

MARKER = "<!-- VEGA_BUNDLE -->"
VEGA_LITE_VERSION = "5.21"  # the major version of the `$schema` in DVC's plot templates (vega-lite v5)
DVC_PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  # what DVC replaces in the whole page
# The libraries as globals, as DVC's plot divs call them; SVG marks (crisp, and visible in the DOM) by default.
SNIPPET = """
window.vega = vega;
window.vegaLite = vegaLite;
window.vegaEmbed = (element, spec, options) => vegaEmbed(element, spec, {renderer: "svg", ...options});
"""


def vega_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed with their dependencies as one classic script's source."""
    import vl_convert

    return vl_convert.javascript_bundle(SNIPPET, vl_version=VEGA_LITE_VERSION)


def build_page(template: str, bundle: str) -> str:
    """The page template with the bundle inlined at MARKER; fails if the result would confuse DVC or the browser."""
    if template.count(MARKER) != 1 or "{plot_divs}" not in template:
        raise ValueError(f"the page template needs one {MARKER} line and the {{plot_divs}} placeholder")
    if "{scripts}" in template:
        raise ValueError("the page template must not hold {scripts}: DVC puts its CDN scripts there")
    clashes = [text for text in (*DVC_PLACEHOLDERS, "</script") if text in bundle]
    if clashes:
        raise ValueError(f"the Vega bundle contains {clashes}, which would break the page")
    return template.replace(MARKER, f'<script type="text/javascript">{bundle}</script>')


def write_page(template: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Read the template, inline the bundle and write the page atomically."""
    page = build_page(Path(template).read_text(encoding="utf-8"), vega_bundle())
    out = Path(out)
    with atomic_file(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carremoval.plots_page", description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=".dvc/plots/page.in.html")
    parser.add_argument("--out", default=".dvc/plots/page.html")
    args = parser.parse_args(argv)
    out = write_page(args.template, args.out)
    print(f"plots page: {out} (Vega, Vega-Lite {VEGA_LITE_VERSION} and Vega-Embed inlined)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
