"""The test bench on the live kernel, with other people's programs (issue 16).

Every program here comes from its author's source, built by conformance/testbench/build.py
(nginx 1.26.3 from Debian's nginx source package, the kernel selftests from Debian's
linux-source-6.12, udpgrm's classic listings as its scripts print them), and every
expectation from what that author wrote down: nginx's helper source and its server's use of
SO_COOKIE, the selftests' C test code, udpgrm's comments. The live kernel delivers; the bench
records; the model predicts. A planted off-by-one program proves the comparison can fail.
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import oracle_unavailable

from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available
from sidkit.cli import main
from sidkit.steering import FixedOffset, SteeringPolicy
from sidkit.testbench import (
    DROP,
    Family,
    ModelContext,
    Outcome,
    Probe,
    SocketInfo,
    check,
    load_program,
    nginx_model,
    policy_model,
)
from sidkit.testbench._text import load_c_arrays, load_cbpf_listing

pytestmark = pytest.mark.oracle

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "conformance" / "testbench" / "build.py"
UDPGRM = ROOT / "conformance" / "testbench" / "third_party" / "udpgrm"


@pytest.fixture(scope="module")
def live() -> None:
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    """Build (or find) the third-party objects with the project script."""
    if shutil.which("clang") is None or not Path("/usr/include/bpf/bpf_helpers.h").is_file():
        oracle_unavailable("clang and libbpf-dev are needed to build the programs")
    result = subprocess.run(
        [sys.executable, str(BUILD)], capture_output=True, text=True, check=False, timeout=900
    )
    if result.returncode:
        oracle_unavailable(f"conformance/testbench/build.py failed: {result.stderr[-2000:]}")
    data: dict[str, str] = json.loads((BUILD.parent / "_work" / "built.json").read_text())
    return data


# --- nginx ----------------------------------------------------------------------------------


def _nginx_feed(rng: random.Random) -> Any:
    """Datagrams as nginx's clients send them: CIDs nginx minted for each socket (its SO_COOKIE
    big-endian in the first 8 octets of a 20-octet CID, ngx_quic_create_server_id), in short
    and long headers; and the cases its helper leaves to the kernel: client-chosen DCIDs no
    socket has, long-header DCIDs shorter than 8 octets, short headers cut before a full
    20-octet DCID, and packets too short to hold a header."""

    def feed(socks: Sequence[SocketInfo]) -> list[bytes]:
        out: list[bytes] = []
        for s in socks:
            for _ in range(3):
                cid = s.cookie.to_bytes(8, "big") + rng.randbytes(12)
                out.append(bytes([0x40 | rng.randrange(0x40)]) + cid + rng.randbytes(30))
                out.append(bytes([0xC0, 0, 0, 0, 1, 20]) + cid + rng.randbytes(40))
            # a short header with the cookie but fewer than 20 DCID octets: no lookup
            out.append(b"\x41" + s.cookie.to_bytes(8, "big") + rng.randbytes(5))
            # a long header whose 8-octet DCID is the cookie: looked up, found
            out.append(bytes([0xC3, 0, 0, 0, 1, 8]) + s.cookie.to_bytes(8, "big"))
            # DCID length 7 with the cookie behind it: "useless to search", default
            out.append(bytes([0xC0, 0, 0, 0, 1, 7]) + s.cookie.to_bytes(8, "big") + b"\0" * 20)
        for _ in range(12):  # client Initials: random DCIDs, unknown keys (-ENOENT)
            out.append(bytes([0xC0, 0, 0, 0, 1, 8 + rng.randrange(13)]) + rng.randbytes(60))
            out.append(bytes([0x40]) + rng.randbytes(40))
        out += [b"", b"\x40", b"\xc0\x00\x00\x00", bytes([0xC0, 0, 0, 0, 1, 20]) + b"\x01" * 10]
        return out

    return feed


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("form", ["object", "bpf_code"])
def test_nginx_helper_routes_its_cids_and_falls_back_as_its_source_says(
    live: None, built: dict[str, str], form: str, family: Family
) -> None:
    """Built from nginx 1.26.3's source (and, second, the bytecode nginx ships in
    ngx_event_quic_bpf_code.c): every minted CID lands on its socket, every other datagram
    goes where the kernel's default selection puts it."""
    path = built["nginx_helper_object"] if form == "object" else built["nginx_bpf_code"]
    program = load_program(path)
    assert [m.name for m in program.maps] == ["ngx_quic_sockmap"]
    report = check(
        program,
        4,
        _nginx_feed(random.Random(16)),
        nginx_model(),
        maps={"ngx_quic_sockmap": "cookie"},
        family=family,
    )
    assert report.ok, [r.describe() for r in report.disagreements]
    v = report.verdicts()
    # 7 of the 9 datagrams per socket carry a full cookie key: those are selected (also where
    # the default selection would have picked the same socket: the bench moves the map's
    # entries and sees them follow), and nothing else is
    ctx = ModelContext(tuple(SocketInfo(i, c) for i, c in enumerate(report.cookies)))
    keyed = [r.index for r in report.rows if nginx_model()(r.payload, ctx) is not None]
    assert len(keyed) == 4 * 7
    assert [r.index for r in report.rows if r.verdict == "selected"] == keyed
    # every datagram's default socket, as sidkit's Group model computes it from the kernel's
    # own hash, is where the kernel put it with no program choosing
    assert report.group_agreement() == (report.total, report.total)
    assert v["drop"] == 0  # nginx never drops: "failed" is SK_PASS too
    assert report.total == 4 * 9 + 24 + 4


def test_nginx_without_its_map_filled_is_a_clear_error(
    live: None, built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["testbench", built["nginx_helper_object"], "--sockets", "2", "--payload", "40"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "'ngx_quic_sockmap'" in err


# --- kernel selftests -----------------------------------------------------------------------


def _cmd(index: int, pass_on_failure: int = 0) -> bytes:
    """struct cmd of test_select_reuseport_common.h: two host-order u32s."""
    return struct.pack("=II", index, pass_on_failure)


def _select_reuseport_model(payload: bytes, ctx: ModelContext) -> Outcome:
    """prog_tests/select_reuseport.c: test_pass (cmd.reuseport_index = i lands on sk_fds[i]),
    test_err_sk_select_port (index REUSEPORT_ARRAY_SIZE: dropped), test_pass_on_err (the same
    with pass_on_failure: the kernel's own selection), test_err_skb_data (no cmd: dropped)."""
    if len(payload) < 8:
        return DROP
    index, pass_on_failure = struct.unpack("=II", payload[:8])
    if index < ctx.n:
        return int(index)
    return None if pass_on_failure else DROP


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_select_reuseport_kern_with_its_tests_expectations(
    live: None, built: dict[str, str], family: Family
) -> None:
    """The selftest runs every case for AF_INET and AF_INET6; so does the bench."""
    program = load_program(built["select_reuseport_object"])
    n = 32  # REUSEPORT_ARRAY_SIZE; the test binds that many sockets
    feed = [_cmd(i) for i in range(n)] + [_cmd(n), _cmd(n, 1), b""]
    report = check(
        program,
        n,
        feed,
        _select_reuseport_model,
        values={"tmp_index_ovr_map": {struct.pack("=I", 0): struct.pack("=i", -1)}},
        family=family,
    )
    assert report.ok, [r.describe() for r in report.disagreements]
    assert [r.socket for r in report.rows[:n]] == list(range(n))
    assert {r.verdict for r in report.rows[:n]} == {"selected"}
    assert report.group_agreement() == (report.total, report.total)
    assert [r.verdict for r in report.rows[n:]] == ["drop", "pass", "drop"]


def test_select_reuseport_index_override_through_the_cli(
    live: None, built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """test_syncookie's mechanism: tmp_index_ovr_map[0] = 1 sends the next datagram to
    socket 1 whatever its command says, and resets itself to -1 -- set with --set."""
    code = main(
        [
            "testbench",
            built["select_reuseport_object"],
            "--sockets",
            "4",
            "--payload",
            _cmd(2).hex(),
            _cmd(2).hex(),
            "--set",
            "tmp_index_ovr_map=00000000:" + struct.pack("=i", 1).hex(),
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [d["socket"] for d in doc["datagrams"]] == [1, 2]


def test_select_reuseport_err_inner_map(live: None, built: dict[str, str]) -> None:
    """test_err_inner_map: with outer_map empty every datagram is dropped."""
    program = load_program(built["select_reuseport_object"])
    report = check(
        program,
        4,
        [_cmd(0), _cmd(3)],
        lambda payload, ctx: DROP,
        maps={"outer_map": "empty"},
        values={"tmp_index_ovr_map": {struct.pack("=I", 0): struct.pack("=i", -1)}},
    )
    assert report.ok and report.verdicts()["drop"] == 2


@pytest.mark.parametrize("array", ["prog", "code"])
@pytest.mark.parametrize("mod", [10, 5])
def test_reuseport_bpf_c_programs(live: None, built: dict[str, str], array: str, mod: int) -> None:
    """selftests/net/reuseport_bpf.c: attach_ebpf's socket filter and attach_cbpf's classic
    program read the first word (network order) modulo *mod*; test_recv_order sends
    htonl(data) for data in 0 .. 2 * recv_socks and expects socket data % mod, with 10
    sockets, first with mod 10 and then with mod 5."""
    source = Path(built["reuseport_bpf_source"]).read_text()
    program = load_c_arrays(source, array, defines={"mod": mod}, name="reuseport_bpf.c")
    assert program.kind == ("socket_filter" if array == "prog" else "cbpf")
    feed = [Probe(struct.pack("!I", d), sport=9000 + d) for d in range(20)]
    policy = SteeringPolicy(FixedOffset(0, 4), "modulo", mod)
    report = check(program, 10, feed, policy_model(policy))
    assert report.ok, [r.describe() for r in report.disagreements]
    assert [r.socket for r in report.rows] == [d % mod for d in range(20)]
    # every datagram was chosen by the program (index < 10), also where the hash would have
    # picked the same socket: the classic one is interpreted, the socket filter test-run
    assert {r.verdict for r in report.rows} == {"selected"}


# --- a program that misroutes on purpose ------------------------------------------------------


def test_off_by_one_program_is_caught_with_the_datagrams_named(
    live: None, built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    n = 4
    payloads = [struct.pack("!I", i).hex() + "00" * 8 for i in range(n)]
    code = main(
        [
            "testbench",
            built["misroute_object"],
            "--sockets",
            str(n),
            "--payload",
            *payloads,
            "--expect",
            "index:0:4",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["program"] == "misroute" and doc["sockets"] == n
    assert set(doc) == {"program", "sockets", "datagrams", "summary"}
    rows = doc["datagrams"]
    assert all(set(r) == {"index", "socket", "verdict", "expected"} for r in rows)
    assert [r["expected"] for r in rows] == list(range(n))
    # indices 0..n-2 land one socket off; the last has no successor and falls back
    wrong = [r["index"] for r in rows if r["socket"] != r["expected"]]
    assert wrong[: n - 1] == list(range(n - 1))
    assert [r["socket"] for r in rows[: n - 1]] == list(range(1, n))
    assert doc["summary"]["total"] == n and doc["summary"]["agree"] == n - len(wrong)
    # the text report names each datagram that disagrees
    code = main(
        [
            "testbench",
            built["misroute_object"],
            "--sockets",
            str(n),
            "--payload",
            *payloads,
            "--expect",
            "index:0:4",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    for i in range(n - 1):
        assert f"DISAGREE datagram {i} (12 bytes {payloads[i]}" in out


# --- udpgrm's classic dissectors --------------------------------------------------------------


def _udpgrm_basic(payload: bytes, ctx: ModelContext) -> Outcome:
    """cbpf-basic.sh's comments: a first octet ASCII '0'..'3' is an app number (returned with
    the high bit set, 0x8000000n); otherwise the cookie is the big-endian u16 at offset 1. On a
    plain reuseport group the return value is a socket index: below the group size it selects,
    past it the kernel's hash decides; a load past the end makes a classic program return 0."""
    if not payload:
        return 0
    if 0x30 <= payload[0] <= 0x33:
        return None
    if len(payload) < 3:
        return 0
    value = int.from_bytes(payload[1:3], "big")
    return value if value < ctx.n else None


def _udpgrm_quic(payload: bytes, ctx: ModelContext) -> Outcome:
    """cbpf-naive-quic.sh's comments: a long header must have a 16-octet DCID (else return
    -1); the cookie is the big-endian u16 at the start of the DCID (offset 6 long, 1 short)."""
    if not payload:
        return 0
    if payload[0] & 0x80:
        if len(payload) < 6:
            return 0
        if payload[5] != 16:
            return None
        at = 6
    else:
        at = 1
    if len(payload) < at + 2:
        return 0
    value = int.from_bytes(payload[at : at + 2], "big")
    return value if value < ctx.n else None


@pytest.mark.parametrize(
    ("script", "model"),
    [("cbpf-basic.sh", _udpgrm_basic), ("cbpf-naive-quic.sh", _udpgrm_quic)],
)
def test_udpgrm_dissectors(live: None, script: str, model: Any) -> None:
    program = load_cbpf_listing((UDPGRM / script).read_text(), name=script)
    rng = random.Random(script)
    feed = [b"", b"\x00", b"0abc", b"3", b"\x00\x00\x02", b"\x40\x00\x01" + rng.randbytes(20)]
    for _ in range(40):
        first = rng.choice([0x30, 0x33, 0x40, 0x41, 0xC0, 0xC3])
        dcid_len = rng.choice([8, 16, 16, 20])
        body = bytes([first, 0, 0, 0, 1, dcid_len]) if first & 0x80 else bytes([first])
        feed.append(body + bytes([0, rng.randrange(6)]) + rng.randbytes(rng.randrange(30)))
    report = check(program, 4, feed, model)
    assert report.ok, [r.describe() for r in report.disagreements]
    v = report.verdicts()
    assert v["selected"] > 10 and v["pass"] > 5


def test_python_callback_sees_the_cookies(live: None, built: dict[str, str]) -> None:
    """The feed callback receives the sockets' SO_COOKIEs; the report carries the same."""
    seen: list[int] = []

    def feed(socks: Sequence[SocketInfo]) -> list[bytes]:
        seen.extend(s.cookie for s in socks)
        return [b"\x40" + s.cookie.to_bytes(8, "big") + b"\0" * 12 for s in socks]

    program = load_program(built["nginx_helper_object"])
    report = check(program, 3, feed, nginx_model(), maps={"ngx_quic_sockmap": "cookie"})
    assert report.ok
    assert [r.socket for r in report.rows] == [0, 1, 2]
    assert len(set(report.cookies)) == 3 and all(c > 0 for c in report.cookies)
    # the callback ran in the forked namespace process: its copy of the list was filled
    assert seen == []


# --- steering conformance vectors through a third-party program -------------------------------


def test_vectors_verify_program(
    live: None, built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The steering vectors pass through the selftest's own classic program and fail -- by
    name -- through the off-by-one one."""
    ok = main(
        ["vectors", "verify", "--program", built["reuseport_bpf_source"], "--section", "code"]
    )
    out = capsys.readouterr().out
    assert ok == 0 and "40 passed, 0 failed" in out
    bad = main(["vectors", "verify", "--program", built["misroute_object"]])
    out = capsys.readouterr().out
    assert bad == 1 and "DISAGREE" not in out and "expected socket" in out


# --- global data ------------------------------------------------------------------------------


@pytest.mark.parametrize("modulus", [3, 5])
def test_global_data_sections_become_maps(live: None, built: dict[str, str], modulus: int) -> None:
    """conformance/testbench/programs/global_data.c reads its modulus from .rodata (at offset
    4, behind a padding word) and counts in .bss: the loader patches both references
    (BPF_PSEUDO_MAP_VALUE and the offset). --set on .rodata changes the modulus before the
    load, as a libbpf skeleton sets rodata."""
    program = load_program(built["global_data_object"])
    assert {m.name for m in program.maps} == {"sockets", ".rodata", ".bss"}
    values = {}
    if modulus != 3:
        values[".rodata"] = {struct.pack("=I", 0): struct.pack("=II", 0xDEADBEEF, modulus)}
    feed = [struct.pack("!I", d) for d in range(12)]
    policy = SteeringPolicy(FixedOffset(0, 4), "modulo", modulus)
    report = check(program, 6, feed, policy_model(policy), values=values)
    assert report.ok, [r.describe() for r in report.disagreements]
    assert [r.socket for r in report.rows] == [d % modulus for d in range(12)]


# --- a real capture ---------------------------------------------------------------------------


def test_real_quic_capture_through_nginx(
    live: None, built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Wireshark's quic_follow_multistream capture (905 datagrams of a real QUIC connection,
    from the sha256-pinned corpus that conformance/captures/fetch.py brings) through nginx's
    helper with the CLI: no DCID in it is a cookie of these sockets, so every datagram -- of
    both directions, sent from the lab's clients -- takes the kernel's default selection,
    and sidkit's Group model names the socket of each."""
    manifest = json.loads((ROOT / "conformance" / "captures" / "manifest.json").read_text())
    name = "wireshark/quic_follow_multistream.pcapng"
    entry = next(c for c in manifest["captures"] if c["name"] == name)
    path = ROOT / "conformance" / "captures" / "_work" / name
    stamp = path.with_name(path.name + ".sha256")
    if not stamp.is_file() or stamp.read_text().strip() != entry["sha256"]:
        oracle_unavailable(
            f"corpus capture {name} is missing (python3 conformance/captures/fetch.py)"
        )
    code = main(
        [
            "testbench",
            built["nginx_helper_object"],
            "--sockets",
            "4",
            "--map",
            "ngx_quic_sockmap=cookie",
            "--capture",
            str(path),
            "--expect",
            "nginx",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["summary"] == {"agree": 905, "total": 905}
    assert {d["verdict"] for d in doc["datagrams"]} == {"pass"}
