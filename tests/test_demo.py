"""The mobility demo (``sidkit demo``): live when the kernel allows, model-only otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import oracle_unavailable

from sidkit import InputValueError
from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available
from sidkit.cli import main
from sidkit.demo import (
    MAX_DATAGRAMS,
    MAX_SESSIONS,
    MAX_SOCKETS,
    MODE_LABEL,
    run_demo,
    run_restart_demo,
)


@pytest.mark.parametrize("protocol", ["quic", "wireguard", "fixed"])
def test_model_only_demo_keeps_every_steered_session(protocol: str) -> None:
    result = run_demo(sessions=40, protocol=protocol, model_only=True)
    assert not result.live and result.reason == "--model-only"
    modes = {m.mode: m for m in result.modes}
    assert modes["tuple"].changed > 20  # two moves keep a socket only 1 time in 16
    assert modes["cbpf"].changed == modes["ebpf"].changed == 0


@pytest.mark.oracle
def test_live_demo_model_predicts_every_datagram() -> None:
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")
    result = run_demo(sessions=60, sockets=5, protocol="quic")
    assert result.live
    for m in result.modes:
        assert m.lost == 0
        assert m.agreed == m.total == 60 * 9
    modes = {m.mode: m for m in result.modes}
    assert modes["tuple"].changed > 30
    assert modes["cbpf"].changed == modes["ebpf"].changed == 0


def test_cli_demo_model_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model-only", "--sessions", "10", "--backend", "ebpf"]) == 0
    out = capsys.readouterr().out
    assert "MODEL ONLY" in out and "eBPF SID steering" in out


def test_cli_demo_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--sockets", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def _processes_with(marker: str) -> list[int]:
    """PIDs whose command line contains *marker* (forked lab children inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.oracle
def test_ctrl_c_cleans_up_the_lab() -> None:
    """SIGINT mid-run: one line, status 130, and no lab process (hence no namespace, socket
    or BPF program, which live only in those processes) left behind."""
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")
    marker = f"{os.getpid() * 7919 % 10**9 + 10**9}"  # a seed nobody else passes
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidkit.cli", "demo", "--sessions", "3000", "--seed", marker],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the demo reports progress before any traffic
    assert "..." in first, first
    time.sleep(0.5)
    assert len(_processes_with(marker)) > 1, "the lab did not start"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "sidkit: interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []


def test_plot_draws_each_mode(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra (pip install 'sidkit[plot]')")
    from sidkit.demo import plot  # noqa: PLC0415

    result = run_demo(sessions=30, sockets=12, protocol="wireguard", model_only=True)
    out = tmp_path / "demo.png"
    fig = plot(result, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = {
        ax.get_title().split("\n")[0]: ax.images[0].get_array() for ax in fig.axes if ax.images
    }
    assert len(panels) == len(result.modes) == 3
    for m in result.modes:
        grid = panels[MODE_LABEL[m.mode]]
        assert grid.shape == (30, len(m.sockets[0]))
        moved = sum(len(set(row.compressed())) > 1 for row in grid)
        assert moved == m.changed  # a row of one colour is a session that kept its socket
    assert any(m.changed for m in result.modes)
    with pytest.raises(InputValueError):
        plot(result, str(tmp_path / "no-such-dir" / "x.png"))


def test_plot_without_matplotlib_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from sidkit.demo import plot  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run_demo(sessions=2, model_only=True)
    with pytest.raises(InputValueError, match="sidkit\\[plot\\]"):
        plot(result, "x.png")


# --- the restart scenario and --json ------------------------------------------------------------

_JSON_MODE_KEYS = {
    "mode",
    "sessions",
    "broken",
    "orphaned",
    "new_on_working",
    "lost",
    "datagrams",
    "model_agrees",
}


def test_model_only_restart_keeps_every_session_in_the_session_table() -> None:
    from sidkit.demo import RESTART_LABEL, run_restart_demo  # noqa: PLC0415

    result = run_restart_demo(sessions=40, model_only=True)
    modes = {m.mode: m for m in result.modes}
    assert list(modes) == [RESTART_LABEL[k] for k in ("tuple", "cbpf", "flow", "table")]
    table = modes["SID session table"]
    assert table.broken == 0 and table.lost == 0 and table.sessions == 60
    assert table.new_on_working == 20  # every new session on the new generation
    assert 0 < table.orphaned < 20  # the crashed worker's sessions, and only those
    # the flow table loses every old session (port, then address change), keeps the new ones
    assert modes["3-tuple flow table"].broken == 40
    assert modes["5-tuple hash (default)"].broken > 30
    assert modes["SID hash (cBPF)"].broken > 20  # the group changed size three times


@pytest.mark.oracle
def test_live_restart_demo_breaks_nothing_with_the_table() -> None:
    """The issue's floor: >= 200 sessions live, the SID session table breaks none and loses
    none, and every mode's model predicts every datagram the kernel delivered."""
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")
    from sidkit.demo import run_restart_demo  # noqa: PLC0415

    result = run_restart_demo(sessions=200)
    assert result.live
    modes = {m.mode: m for m in result.modes}
    for m in result.modes:
        assert m.sessions == 300 and m.lost == 0
        assert m.agreed == m.datagrams == 3600, m.mode
    table = modes["SID session table"]
    assert table.broken == 0 and table.new_on_working == 100
    counters = dict(table.counters)
    assert counters["stale"] == table.orphaned  # each orphan was re-picked exactly once
    assert counters["miss"] == 300 and counters["select_failed"] == 0
    assert modes["3-tuple flow table"].broken == 200  # every old session, no new one
    assert modes["5-tuple hash (default)"].broken > 200
    assert modes["SID hash (cBPF)"].broken > 200


@pytest.mark.parametrize("restart", [False, True])
def test_cli_demo_json_has_the_issue_shape(
    restart: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    import json  # noqa: PLC0415

    args = ["demo", "--model-only", "--sessions", "12", "--json"]
    assert main([*args, "--restart"] if restart else args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"scenario", "kernel", "modes"}
    assert out["scenario"] == ("restart" if restart else "mobility")
    for m in out["modes"]:
        assert set(m) == _JSON_MODE_KEYS
        assert (m["new_on_working"] is None) != restart
        assert all(type(m[k]) is int for k in _JSON_MODE_KEYS - {"mode", "new_on_working"})
    names = [m["mode"] for m in out["modes"]]
    if restart:
        assert names == [
            "5-tuple hash (default)",
            "SID hash (cBPF)",
            "3-tuple flow table",
            "SID session table",
        ]
    else:
        assert names[0] == "5-tuple hash (default)"


def test_cli_demo_restart_table_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra (pip install 'sidkit[plot]')")
    out_png = tmp_path / "restart.png"
    args = ["demo", "--restart", "--model-only", "--sessions", "20", "--plot", str(out_png)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "MODEL ONLY" in out and "SID session table" in out and "orphaned" in out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_demo_restart_needs_two_sockets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--restart", "--model-only", "--sockets", "1"]) != 0
    err = capsys.readouterr().err
    assert "at least 2" in err and "Traceback" not in err


def test_restart_plot_rows_change_colour_exactly_for_broken_sessions(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra (pip install 'sidkit[plot]')")
    from sidkit.demo import plot_restart, run_restart_demo  # noqa: PLC0415

    result = run_restart_demo(sessions=30, model_only=True)
    fig = plot_restart(result, str(tmp_path / "r.png"), rows=30)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4
    for ax, m in zip(panels, result.modes, strict=True):
        grid = ax.images[0].get_array()
        assert grid.shape[0] == 30 + 15
        changed = sum(len(set(row.compressed())) > 1 for row in grid)
        # a row changes colour when the session broke or its socket crashed under it
        assert m.broken <= changed <= m.broken + m.orphaned
        assert str(m.broken) in ax.get_title()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--sessions", "10001"], "--sessions=10001 must be in 1..10000"),
        (["--datagrams", "101"], "--datagrams=101 must be in 1..100"),
        (["--sockets", "65"], "--sockets=65 must be in 1..64"),
        (["--restart", "--sockets", "65"], "--sockets=65 must be in 1..64"),
    ],
)
def test_cli_demo_bounds_sizes_before_any_work(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too large a size is one error line, and nothing was run: the lab is never asked."""

    def no_lab(*_a: object) -> None:
        raise AssertionError("the demo ran before its sizes were checked")

    monkeypatch.setattr(netns, "run_in_lab", no_lab)
    monkeypatch.setattr(netns, "netns_available", no_lab)
    assert main(["demo", "--model-only", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sidkit: error: ") and says in err and err.count("\n") == 1, err


def test_demo_sizes_are_bounded_in_the_library_too() -> None:
    with pytest.raises(InputValueError, match="--datagrams"):
        run_demo(per_phase=10**6, model_only=True)
    with pytest.raises(InputValueError, match="--sessions"):
        run_restart_demo(sessions=10**6, model_only=True)


def test_cli_demo_help_states_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    for limit in (
        f"at most {MAX_SOCKETS})",
        f"at most {MAX_SESSIONS})",
        f"at most {MAX_DATAGRAMS})",
    ):
        assert limit in helptext


def test_cli_demo_plot_without_matplotlib_fails_first(tmp_path: Path) -> None:
    """A missing plot extra is reported before the demo runs: the demo would print its
    progress and table first, so an empty stdout and no progress line show nothing ran."""
    out_png = tmp_path / "demo.png"
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from sidkit.cli import main\n"
        f"sys.exit(main(['demo', '--plot', {str(out_png)!r}, '--sessions', '5']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (
        "sidkit: error: --plot needs matplotlib, which cannot be imported here: "
        "pip install 'sidkit[plot]'\n"
    )
    assert not out_png.exists()


def test_cli_demo_without_root_says_why_once() -> None:
    """As nobody (setpriv drops to uid 65534 with no capabilities) the namespace is refused:
    the reason appears once, as a sentence, without an exception's class name."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user with setpriv")
    import shutil  # noqa: PLC0415

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    proc = subprocess.run(
        [
            *(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"),
            *(sys.executable, "-m", "sidkit.cli", "demo", "--sessions", "5", "--datagrams", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HOME": "/nonexistent"},
    )
    both = proc.stdout + proc.stderr
    assert proc.returncode == 0, both
    assert both.count("EPERM") == 1, both
    assert "Error" not in both and "Traceback" not in both, both
    assert "MODEL ONLY (unshare(CLONE_NEWNET): EPERM" in proc.stdout
    assert proc.stderr == ""
