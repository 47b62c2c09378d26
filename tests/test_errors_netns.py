# Issue 18: interrupting a live-kernel experiment. 82 of 3,379 interrupted runs printed a
# ProcessLookupError traceback: Ctrl-C landed after waitpid() had already reaped the namespace
# child, and the handler sent SIGKILL to a pid that was gone. And `kill -INT` sent to the
# command alone (not its process group) left the namespace child running to the end of its
# experiment. These tests force both cases deterministically.
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidkit.bpf import netns


def _exited_child() -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os._exit(0)
    return pid


def test_stop_never_signals_a_child_already_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _exited_child()
    os.waitpid(pid, 0)
    kills: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda *a: kills.append(a))
    netns._stop(pid)
    assert kills == []


def test_ctrl_c_just_after_the_reap_is_still_an_interrupt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race itself: waitpid() returns (child reaped), then KeyboardInterrupt fires."""
    pid = _exited_child()
    real_waitpid = os.waitpid
    calls: list[int] = []

    def waitpid_then_interrupt(p: int, flags: int) -> tuple[int, int]:
        result = real_waitpid(p, flags)
        calls.append(flags)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(os, "waitpid", waitpid_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        netns._reap(pid)
    assert calls[0] == 0


def test_stop_kills_a_child_that_is_still_running() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        time.sleep(60)
        os._exit(0)
    started = time.monotonic()
    netns._stop(pid)
    assert time.monotonic() - started < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from sidkit.bpf import netns

    def experiment(lab):
        print("started", flush=True)
        time.sleep(120)

    try:
        netns.run_in_lab(experiment)
    except KeyboardInterrupt:
        print("sidkit: interrupted", file=sys.stderr)
        sys.exit(130)
    """
)


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


@pytest.fixture
def lab_ready() -> Iterator[None]:
    reason = netns.netns_available()
    if reason is not None:
        from conftest import oracle_unavailable  # noqa: PLC0415

        oracle_unavailable(f"network namespaces: {reason}")
    yield


@pytest.mark.usefixtures("lab_ready")
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.3])
def test_sigint_to_the_caller_alone_stops_the_namespace_processes_promptly(delay: float) -> None:
    """`kill -INT <pid>`: only the caller gets the signal, the namespace children do not."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: we can find every process it made
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"started\n"
        time.sleep(delay)
        assert len(_group_members(proc.pid)) == 3  # caller, server namespace, client namespace
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert err == b"sidkit: interrupted\n"
    assert took < 3, f"the namespace child kept the caller waiting {took:.1f} s"
    deadline = time.monotonic() + 3
    while _group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_members(proc.pid) == [], "a namespace process outlived the caller"


@pytest.mark.usefixtures("lab_ready")
def test_sigint_to_the_sidkit_command_stops_its_namespaces() -> None:
    """The same through the real command: `kill -INT` while `sidkit demo` runs its lab."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidkit.cli", "demo", "--sessions", "5000", "--datagrams", "20"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the first progress line: the lab is being built
        assert line.startswith(b"  ... "), line
        time.sleep(0.5)
        assert len(_group_members(proc.pid)) >= 2, "no namespace process to stop"
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert err.decode().splitlines()[-1] == "sidkit: interrupted"
    assert b"Traceback" not in err
    assert took < 5, f"the namespace child kept the command waiting {took:.1f} s"
    deadline = time.monotonic() + 3
    while _group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_members(proc.pid) == [], "a namespace process outlived the command"
