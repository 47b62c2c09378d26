"""`sidkit flows` table wording (issue 18): plural agreement, what the no-SID line means,
configured (not found) protocols, paths explained; -p/-o as on `sidkit sid`."""

from __future__ import annotations

from pathlib import Path

import pytest

import sidkit.cli

DATA = Path(__file__).parents[1] / "data"


def _table(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert sidkit.cli.main(["flows", "--no-progress", *argv]) == 0
    return capsys.readouterr().out


def test_header_agrees_in_number_and_names_configured_protocols(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _table([str(DATA / "quic-v1-migration.pcap")], capsys)
    head = out.splitlines()[0]
    assert "3 SID flows, 0 tuple flows" in head
    assert "(configured protocols: quic, wireguard; grouped by sid)" in head
    assert "paths: a flow's 5-tuples, the two directions of one counted once" in out
    # a flow limit of one: one flow of each kind, in the singular
    one = _table(["--max-flows", "1", str(DATA / "quic-v1-migration.pcap")], capsys)
    assert "; 1 SID flow, 0 tuple flows (" in one.splitlines()[0]
    assert "3 datagrams over the flow limit (--max-flows 1)" in one
    # the wireguard-only view of a QUIC capture: nothing claimed, in words
    wg = _table(["-p", "wireguard", "--max-flows", "1", str(DATA / "quic-v2.pcap")], capsys)
    lines = wg.splitlines()
    assert "0 with a session ID; 0 SID flows, 1 tuple flow (" in lines[0], lines[0]
    assert lines[2] == "without a session ID: 12 whose first byte no configured protocol claims"


def test_short_options_are_the_long_ones(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DATA / "quic-v1-migration.pcap")
    long = _table(["--protocol", "quic,wireguard", "--option", "quic.cid_length=8", path], capsys)
    short = _table(["-p", "quic,wireguard", "-o", "quic.cid_length=8", path], capsys)
    assert long == short
    assert "(configured protocols: quic, wireguard;" in short
