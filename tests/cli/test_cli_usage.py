"""The command line as tshark/ip/bpftool users expect it (issue 18).

Bare ``sidkit`` prints its help; ``--version``; a bash completion generated from the parser;
``--json`` on eras, sid and hash with one key style (snake_case); help examples printed as
written and each one working; ``sidkit eras RELEASE``; counts that agree with their nouns.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sidkit import __version__
from sidkit.cli import main
from sidkit.cli._main import SID_EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "conformance" / "vectors"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bare_sidkit_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's convention for a usage error is 2; the help goes to stdout, so `| less` works
    code, out, err = _run(capsys)
    assert code == 2 and err == ""
    assert out.startswith("usage: sidkit [-h] [--version]") and "{hash,demo," in out
    for command in ("hash", "sid", "flows", "eras", "vectors", "demo", "completion"):
        assert re.search(rf"^\s+{command}\s", out, re.M), command


def test_bare_hash_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "hash")
    assert code == 2 and out.startswith("usage: sidkit hash")
    assert "jhash" in out and "socket" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"sidkit {__version__}\n"


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_sid_help_examples_are_printed_as_written_and_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help(capsys, "sid")
    for example in SID_EXAMPLES:
        assert f"\n  {example}\n" in text, example
        code, out, err = _run(capsys, *shlex.split(example)[1:])
        assert code == 0, (example, out, err)
        assert "no session ID found" not in out


def _examples(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("  sidkit ")]


@pytest.mark.parametrize(
    "command", [("hash", "jhash"), ("hash", "siphash"), ("hash", "toeplitz"), ("eras",)]
)
def test_every_help_example_runs(capsys: pytest.CaptureFixture[str], command: tuple[str]) -> None:
    examples = _examples(_help(capsys, *command))
    assert examples
    for example in examples:
        argv = shlex.split(example.split("  ")[0])[1:]
        code, out, err = _run(capsys, *argv)
        assert code == 0 and err == "", (example, err)
        expected = re.search(r"->\s+(0x[0-9a-f]+)", example)
        if expected:
            assert out.strip() == expected[1]


def test_wireguard_needs_32_bytes_and_the_old_example_says_why_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "sid", "0400000011223344", "-p", "wireguard")
    assert code == 1 and "no session ID found (tried wireguard)" in out


def test_quic_short_header_without_cid_length_says_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "sid", "41a1b2c3d4e5f60708aabbcc", "-p", "quic")
    assert code == 1
    assert "quic: option cid_length is not set" in out and "-o quic.cid_length=" in out
    code, out, _ = _run(
        capsys, "sid", "41a1b2c3d4e5f60708aabbcc", "-p", "quic", "-o", "quic.cid_length=8"
    )
    assert code == 0 and out.startswith("quic       a1b2c3d4e5f60708")


def test_protocols_comma_separated_as_in_flows(capsys: pytest.CaptureFixture[str]) -> None:
    payload = "04000000112233440000000000000000" + "00" * 16
    a = _run(capsys, "sid", payload, "-p", "quic,wireguard", "-o", "quic.cid_length=8")
    b = _run(capsys, "sid", payload, "-p", "quic", "-p", "wireguard", "-o", "quic.cid_length=8")
    assert a == b and a[0] == 0 and "wireguard  11223344" in a[1]


def _keys(doc: Any, skip: frozenset[str] = frozenset()) -> set[str]:
    if isinstance(doc, dict):
        out = set(doc)
        for k, v in doc.items():
            if k not in skip:
                out |= _keys(v, skip)
        return out
    if isinstance(doc, list):
        return set().union(*(_keys(v, skip) for v in doc)) if doc else set()
    return set()


SNAKE = re.compile(r"[a-z][a-z0-9_]*")


@pytest.mark.parametrize(
    "argv",
    [
        ["eras", "--json"],
        ["eras", "6.13", "--json"],
        ["eras", "jhash", "2.6.37", "--json"],
        ["sid", "41a1b2c3d4e5f60708aabbcc", "-o", "quic.cid_length=8", "--sockets", "4", "--json"],
        ["sid", "41a1b2c3d4e5f60708aabbcc", "-p", "quic", "--json"],
        ["hash", "jhash", "616263", "--json"],
        ["hash", "siphash", "00", "--key", "000102030405060708090a0b0c0d0e0f", "--half", "--json"],
        ["hash", "toeplitz", "420995bba18e6450", "--json"],
        [
            "hash",
            "socket",
            "--lport",
            "4433",
            "--fport",
            "50000",
            "--initval",
            "0x1234abcd",
            "--laddr",
            "10.0.0.1",
            "--faddr",
            "192.0.2.7",
            "--json",
        ],
        ["vectors", "list", "--json", "--dir", str(VECTORS), "--function", "jhash"],
    ],
)
def test_json_everywhere_in_one_key_style(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, _ = _run(capsys, *argv)
    assert code in (0, 1)
    doc = json.loads(out)
    bad = {k for k in _keys(doc) if not SNAKE.fullmatch(k)}
    assert not bad, bad


def test_json_carries_what_the_text_says(capsys: pytest.CaptureFixture[str]) -> None:
    _, text, _ = _run(capsys, "hash", "jhash", "616263")
    _, out, _ = _run(capsys, "hash", "jhash", "616263", "--json")
    assert json.loads(out)["hash"] == text.strip() == "0x0e397631"
    _, out, _ = _run(capsys, "sid", "41a1b2c3d4e5f60708aabbcc", "-p", "quic", "--json")
    assert any("cid_length" in hint for hint in json.loads(out)["hints"])


def test_eras_release_as_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "eras", "6.13") == _run(capsys, "eras", "--release", "6.13")
    code, out, _ = _run(capsys, "eras", "6.14")
    assert code == 0 and out.startswith("Linux 6.14:")
    assert re.search(r"^udp_lookup1 .* <- new in this release$", out, re.M)
    code, out, _ = _run(capsys, "eras")
    assert out.splitlines()[0].split()[:2] == ["function", "since"]


def test_vectors_counts_agree_with_their_nouns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = json.loads((VECTORS / "published-jhash.json").read_text())
    doc["testGroups"][0]["tests"] = doc["testGroups"][0]["tests"][:1]
    doc["numberOfTests"] = 1
    (tmp_path / "one.json").write_text(json.dumps(doc))
    code, out, _ = _run(capsys, "vectors", "list", "--dir", str(tmp_path))
    assert code == 0 and out.splitlines()[-1] == "1 vector in 1 group of 1 file"
    code, out, _ = _run(capsys, "vectors", "verify", "--dir", str(tmp_path))
    assert code == 0 and " 1 vector  " in out.splitlines()[0]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash to load the completion into")
def test_bash_completion_completes_subcommands_options_and_choices(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, script, _ = _run(capsys, "completion", "bash")
    assert code == 0
    path = tmp_path / "sidkit.bash"
    path.write_text(script)
    probe = (
        f"source {shlex.quote(str(path))}\n"
        't() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _sidkit; '
        'echo "${COMPREPLY[*]}"; }\n'
        "t sidkit ha\nt sidkit hash s\nt sidkit vectors emit --format ''\n"
        "t sidkit hash socket --ini\nt sidkit demo --sessions ''\n"
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["hash", "siphash socket", "json c kunit", "--initval", ""]


@pytest.mark.parametrize(
    "command",
    [
        ("hash", "jhash"),
        ("hash", "siphash"),
        ("hash", "toeplitz"),
        ("hash", "socket"),
        ("hash", "initval"),
        ("sid",),
        ("eras",),
        ("vectors",),
        ("vectors", "list"),
        ("vectors", "verify"),
        ("vectors", "emit"),
        ("demo",),
        ("completion",),
    ],
)
def test_help_examples_stand_one_per_line(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    text = _help(capsys, *command)
    assert re.search(r"^examples?\b", text, re.M), "every subcommand's help has examples"
    assert not re.search(r";\s+sidkit ", text), "examples run together"
