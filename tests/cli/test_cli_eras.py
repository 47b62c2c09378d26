"""``sidkit eras``: the table by function, and ``--release`` for one exact release.

The expected lines are computed from the library (``profile(release).era(function)``), so
the command is held to the table; a few facts are also spelled out (6.1.192 carries the
SO_INCOMING_CPU fix through 6.1.2, 4.14.146 lacks the skip-connected walk).
"""

from __future__ import annotations

import pytest

from sidkit.cli import main
from sidkit.kernel import ERAS, KernelVersion, profile


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eras", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _rows(out: str) -> dict[str, list[str]]:
    """``function -> [variant, from, commit, status]`` for each table line of the --release
    output, read by its fixed columns (a variant may contain a space: "not modelled")."""
    cols = ((0, 22), (23, 51), (52, 79), (80, 92), (94, None))
    return {
        line[:22].strip(): [
            line[a:b].strip().removesuffix("<- new in this release").strip() for a, b in cols[1:]
        ]
        for line in out.splitlines()[1:]
        if line[:1] != " "
    }


@pytest.mark.parametrize("release", ["6.1.192", "4.19.75", "4.14.146", "6.4.5", "6.18"])
def test_release_lists_the_row_in_force_for_every_function(
    capsys: pytest.CaptureFixture[str], release: str
) -> None:
    code, out, err = _run(capsys, "--release", release)
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith(f"Linux {KernelVersion.parse(release)}:")
    rows = _rows(out)
    functions = list(dict.fromkeys(e.function for e in ERAS))
    assert list(rows) == functions
    prof = profile(release)
    for fn in functions:
        era = prof.era(fn)
        via = era.backport_for(prof.version)
        since = f"{era.since}+" if via is None else f"{via}+ (backport of {era.since})"
        assert rows[fn] == [era.variant, since, era.commit or "-", str(era.status)]


def test_release_honours_backports(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "--release", "6.1.192")
    rows = _rows(out)
    assert rows["reuseport_select"][:2] == ["group-hash-incoming-cpu", "6.1.2+ (backport of 6.2)"]
    assert rows["udp6_ehash_initval"][:2] == ["fixed", "6.1.40+ (backport of 6.5)"]
    assert rows["hash_conntrack_raw"][0] == "siphash-combined"  # no 6.5 form in 6.1.y
    _, out, _ = _run(capsys, "--release", "4.14.146")
    assert _rows(out)["reuseport_select"][:2] == ["group-hash", "4.5+"]


def test_release_combines_with_a_function_filter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "reuseport_select", "--release", "4.19.75", "-v")
    assert code == 0
    lines = out.splitlines()
    assert _rows(out)["reuseport_select"][:2] == [
        "group-hash-skip-connected",
        "4.19.75+ (backport of 5.4)",
    ]
    era = profile("4.19.75").era("reuseport_select")
    assert lines[2].strip() == era.evidence
    assert "acdcecc61285" in lines[3] and "verified" in lines[3] and era.note in lines[3]
    assert len(lines) == 4


def test_release_before_a_function_existed(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "siphash", "--release", "4.10")
    assert _rows(out)["siphash"][:2] == ["-", "(none before 4.11)"]


@pytest.mark.parametrize("bad", ["banana", "2.4.37", "", "v"])
def test_bad_release_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, out, err = _run(capsys, "--release", bad)
    assert code == 2 and out == ""
    assert err.startswith("sidkit: error: ") and err.count("\n") == 1


def test_unknown_function_still_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "md5", "--release", "6.1")
    assert code == 2 and "no function 'md5'" in err


def test_table_view_unchanged_and_verbose_adds_provenance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "reuseport_select")
    assert code == 0
    rows = [e for e in ERAS if e.function == "reuseport_select"]
    header, *lines = out.splitlines()  # a header names the columns (issue 18)
    assert header.split() == ["function", "since", "form", "source"]
    assert [line.split()[1] for line in lines] == [f"{e.since}+" for e in rows]
    _, out, _ = _run(capsys, "reuseport_select", "-v")
    assert len(out.splitlines()) == 1 + 3 * len(rows)
    assert "commit acdcecc61285; mainline 5.4; stable 5.3.1, 5.2.17, 4.19.75" in out
