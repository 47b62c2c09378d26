"""What the documentation's reader sees: error marks the theme draws, and the demo's figure.

Furo paints a red error box over every ``.. contents::`` from its stylesheet alone, so
``sphinx-build -W`` never hears of it; docs/_ext/sidkit_pagecheck.py reads the built pages
for such marks and turns them into warnings. These tests build small throw-away projects
with the real theme and check that a page with the mark fails a ``-W`` build and the same
page without it passes -- the check is tested against furo's own stylesheet, not a copy.

The demo's figure (sidkit._plot, drawn by ``sidkit demo --plot`` and by the docs build)
must explain itself: its headline counts, the marked moves and one readable row per
session are read back from the drawn figure and compared with the run's own data.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures.modules import load_file

from sidkit import InputValueError
from sidkit.demo import MODE_LABEL, run_demo

pytest.importorskip("sphinx", reason="the docs pages need Sphinx: pip install -e '.[docs]'")

DOCS = Path(__file__).resolve().parent.parent / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

from sidkit_pagecheck import page_problems, stylesheet_marks  # noqa: E402

_PAGE = """Title
=====

{extra}

First
-----

Text.

Second
------

Text.
"""


def _build(tmp_path: Path, pages: dict[str, str]) -> tuple[int, Path]:
    """Build *pages* with furo, the page check and -W; return (exit status, output dir)."""
    pytest.importorskip("furo", reason="the docs extra (pip install 'sidkit[docs]')")
    from sphinx.cmd.build import build_main  # noqa: PLC0415

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['sidkit_pagecheck']\nhtml_theme = 'furo'\n",
        encoding="utf-8",
    )
    for name, text in pages.items():
        (src / f"{name}.rst").write_text(text, encoding="utf-8")
    status = build_main(["-q", "-W", "-b", "html", str(src), str(out)])
    return status, out


def test_a_contents_directive_fails_the_build(tmp_path: Path) -> None:
    status, out = _build(tmp_path, {"index": _PAGE.format(extra=".. contents::\n   :local:")})
    assert status != 0
    problems = page_problems(out)
    assert len(problems) == 1 and problems[0].startswith("index.html:")
    assert "contents" in problems[0]


def test_the_same_page_without_it_passes(tmp_path: Path) -> None:
    status, out = _build(tmp_path, {"index": _PAGE.format(extra="")})
    assert status == 0
    assert page_problems(out) == []


def test_the_themes_escape_hatch_is_honoured(tmp_path: Path) -> None:
    # furo's own rule: .contents:not(.this-will-duplicate-information-and-it-is-still-useful-here)
    extra = ".. contents::\n   :class: this-will-duplicate-information-and-it-is-still-useful-here"
    status, out = _build(tmp_path, {"index": _PAGE.format(extra=extra)})
    assert (status, page_problems(out)) == (0, [])


def test_an_untitled_page_fails_the_build(tmp_path: Path) -> None:
    pages = {"index": _PAGE.format(extra=".. toctree::\n\n   other"), "other": "Just text.\n"}
    status, out = _build(tmp_path, pages)
    assert status != 0
    problems = page_problems(out)
    assert any(p.startswith("other.html: the page has no title") for p in problems)
    assert any(p == "searchindex.js: other is listed as '<no title>'" for p in problems)


def test_marks_are_read_from_the_stylesheet() -> None:
    css = (
        "body{--color-api-name:var(--color-problematic)}"  # a variable definition: no mark
        ".sig-name{color:var(--color-api-name)}"
        "@media (min-width:1px){.x.y:not(.z){color:var(--color-problematic)}}"
        "nav.bad:before{content:'WARNING: do not'}"
        "a > .deep .leaf{color:var(--color-problematic)}"
    )
    marks = {
        (tag, tuple(sorted(need)), tuple(avoid)) for tag, need, avoid, _ in stylesheet_marks(css)
    }
    assert marks == {("", ("x", "y"), ("z",)), ("nav", ("bad",), ()), ("", ("leaf",), ())}


# --- the demo's figure ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    pytest.importorskip("matplotlib", reason="the plot extra (pip install 'sidkit[plot]')")
    from sidkit.demo import plot as plot_demo  # noqa: PLC0415

    result = run_demo(model_only=True, seed=1)
    out = tmp_path_factory.mktemp("figure") / "demo.png"
    fig = plot_demo(result, str(out), max_rows=40, row_inches=0.12)
    return result, fig, out


def _panels(fig: Any) -> list[Any]:
    return [ax for ax in fig.axes if ax.images]


def test_the_figure_says_how_many_sessions_changed_socket(
    drawn: tuple[Any, Any, Path],
) -> None:
    result, fig, out = drawn
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    titles = [" ".join(ax.get_title().split("\n")) for ax in _panels(fig)]
    assert titles == [
        f"{MODE_LABEL[m.mode]} {m.changed} of {result.sessions} sessions changed socket"
        for m in result.modes
    ]
    assert titles[0].endswith("191 of 200 sessions changed socket")


def test_the_figure_marks_every_change_of_socket_and_both_moves(
    drawn: tuple[Any, Any, Path],
) -> None:
    result, fig, _ = drawn
    for ax, m in zip(_panels(fig), result.modes, strict=True):
        rows = m.sockets[:40]
        changes = {
            (x - 0.5, y)
            for y, row in enumerate(rows)
            for x in range(1, len(row))
            if row[x] is not None and row[x - 1] is not None and row[x] != row[x - 1]
        }
        markers = [ln for ln in ax.lines if ln.get_marker() == ">"]
        assert len(markers) == 1
        drawn_at = set(zip(markers[0].get_xdata(), markers[0].get_ydata(), strict=True))
        assert drawn_at == changes
        assert (len(changes) > 0) == (m.mode == "tuple")
        moves = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_linestyle() == "--")
        assert moves == [2.5, 5.5]  # 3 datagrams per path: after the 3rd and the 6th
        labels = [t.get_text() for t in ax.texts]
        assert any("NAT rebinding" in t for t in labels)
        assert any("Wi-Fi -> LTE" in t for t in labels)


def test_each_session_is_a_readable_row(drawn: tuple[Any, Any, Path]) -> None:
    _result, fig, _ = drawn
    for ax in _panels(fig):
        assert ax.images[0].get_array().shape[0] == 40
        height_px = ax.get_window_extent().height
        assert height_px / 40 >= 10  # pixels per session row in the saved PNG
    assert "sessions 1-40 of 200" in _panels(fig)[0].get_ylabel()
    caption = " ".join(t.get_text() for t in fig.texts)
    assert "holds none of its state" in " ".join(caption.split())


def test_the_default_picture_keeps_rows_several_pixels_high(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra (pip install 'sidkit[plot]')")
    from sidkit._plot import MAX_ROWS  # noqa: PLC0415
    from sidkit.demo import plot as plot_demo  # noqa: PLC0415

    result = run_demo(model_only=True, seed=2, sessions=MAX_ROWS + 50)
    fig = plot_demo(result, str(tmp_path / "d.png"))
    ax = _panels(fig)[0]
    assert ax.images[0].get_array().shape[0] == MAX_ROWS  # drawn rows are capped ...
    assert ax.get_window_extent().height / MAX_ROWS >= 5
    assert f"of {MAX_ROWS + 50} sessions" in ax.get_title().replace("\n", " ")  # ... counts not


def test_bad_figure_arguments_are_one_sidkit_error(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra (pip install 'sidkit[plot]')")
    from sidkit.demo import plot as plot_demo  # noqa: PLC0415

    result = run_demo(model_only=True, sessions=2)
    for kwargs in ({"max_rows": 0}, {"max_rows": True}, {"row_inches": 0.0}, {"row_inches": "x"}):
        with pytest.raises(InputValueError):
            plot_demo(result, str(tmp_path / "x.png"), **kwargs)


def test_the_docs_draw_the_figure_from_the_tutorials_run() -> None:
    module = load_file("sidkit_figures", DOCS / "_ext" / "sidkit_figures.py")
    tutorial = (DOCS / "tutorial.rst").read_text(encoding="utf-8")
    assert "run_demo(model_only=True, seed=1)" in tutorial  # the run the extension draws
    for page in ("index.rst", "tutorial.rst"):
        assert f".. figure:: /{module.FIGURE.as_posix()}" in (DOCS / page).read_text("utf-8")
