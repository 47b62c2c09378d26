# Strategy: the mobility demo is the whole mission in one run. Clients in one private network
# namespace hold sessions with a 4-socket reuseport group in another, joined by a veth pair.
# Mid-session each client changes its source port (a NAT rebinding) and then its address (a
# move from Wi-Fi to LTE). The same traffic is replayed three times: with the kernel's default
# 5-tuple hash, with a classic BPF steering program and with an SK_REUSEPORT eBPF program.
# For every datagram the demo also asks sidkit's model which socket the kernel would choose
# -- from the kernel's own flow hash (recorded by an SK_REUSEPORT program that selects
# nothing) in the default mode, from the compiled program run in sidkit's interpreters in the
# steering modes -- and counts how often model and kernel agree.
#
# Where the machine refuses (not Linux, not root, no bpf), the same scenario runs on the model
# alone with a random namespace secret, and every line says so.
"""The mobility demo behind ``sidkit demo``."""

from __future__ import annotations

import random
import struct
import sys
from collections.abc import Callable
from typing import Any, Final, Literal

import attrs

from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available
from sidkit.kernel import LATEST, profile
from sidkit.reuseport import Group, HashRecorder
from sidkit.steering import AnyOf, FixedOffset, Guard, SteeringPolicy, attach

__all__ = [
    "MODE_LABEL",
    "PROTOCOLS",
    "DemoResult",
    "ModeResult",
    "Protocol",
    "plot",
    "render",
    "run_demo",
]

Mode = Literal["tuple", "cbpf", "ebpf"]
MODE_LABEL: Final = {
    "tuple": "5-tuple hash (default)",
    "cbpf": "cBPF SID steering",
    "ebpf": "eBPF SID steering",
}
PORT: Final = 4433
PHASES: Final = ("start", "new port (NAT rebinding)", "new address (Wi-Fi -> LTE)")


def _quic_packet(rng: random.Random, sid: bytes) -> bytes:
    # RFC 9000 §17.3.1 short header: 0b01xxxxxx, then the DCID (here 8 bytes), then
    # protected payload.
    return bytes([0x40 | rng.randrange(0x40)]) + sid + rng.randbytes(24)


def _wireguard_packet(rng: random.Random, sid: bytes) -> bytes:
    # WireGuard transport data (whitepaper §5.4.6): type 4, three reserved zero bytes, the
    # receiver index (4 bytes, little-endian on the wire), counter, encrypted payload.
    return b"\x04\x00\x00\x00" + sid + rng.randbytes(8 + 32)


def _fixed_packet(rng: random.Random, sid: bytes) -> bytes:
    return sid + rng.randbytes(24)


@attrs.frozen
class Protocol:
    """How the demo's clients frame a session ID, and where the steering program finds it."""

    name: str
    description: str
    sid_length: int
    spec: AnyOf
    packet: Callable[[random.Random, bytes], bytes]


PROTOCOLS: Final = {
    "fixed": Protocol(
        "fixed",
        "8-byte SID at offset 0 (the seed's offset/offlen)",
        8,
        AnyOf([FixedOffset(0, 8)]),
        _fixed_packet,
    ),
    "quic": Protocol(
        "quic",
        "QUIC short header, 8-byte DCID",
        8,
        AnyOf([FixedOffset(1, 8, [Guard(0, 0x80, 0x00)])]),
        _quic_packet,
    ),
    "wireguard": Protocol(
        "wireguard",
        "WireGuard transport data, receiver index",
        4,
        AnyOf([FixedOffset(4, 4, [Guard(0, 0xFF, 4), Guard(1, 0xFF, 0)])]),
        _wireguard_packet,
    ),
}


@attrs.frozen
class ModeResult:
    """One mode's run: the default 5-tuple hash (``"tuple"``) or a steering program.

    ``changed`` counts sessions whose datagrams reached more than one socket, ``lost`` the
    datagrams no socket received, ``agreed`` of ``total`` the datagrams whose socket sidkit's
    model predicted; ``sockets`` holds, per session, the socket of each datagram in order
    (None where it was lost) -- what ``--plot`` draws.
    """

    mode: str
    changed: int  # sessions whose datagrams reached more than one socket
    lost: int
    agreed: int  # datagrams whose socket the model predicted
    total: int
    sockets: tuple[tuple[int | None, ...], ...]  # per session, the socket of each datagram


@attrs.frozen
class DemoResult:
    """The whole demo: ``live`` is False when it ran on the model alone, and ``reason`` then
    says why (``"--model-only"`` or the kernel's refusal); ``kernel`` is the release the model
    used; ``modes`` holds one :class:`ModeResult` per mode, the default first."""

    live: bool
    reason: str | None
    kernel: str
    sessions: int
    sockets: int
    protocol: str
    modes: tuple[ModeResult, ...]


def _traffic(
    proto: Protocol, sessions: int, per_phase: int, seed: int
) -> tuple[list[bytes], list[netns.Datagram]]:
    rng = random.Random(seed)
    sids = [rng.randbytes(proto.sid_length) for _ in range(sessions)]
    dgrams = []
    for s, sid in enumerate(sids):
        paths = (
            (netns.CLIENT_V4[0], 10000 + s),
            (netns.CLIENT_V4[0], 20000 + s),
            (netns.CLIENT_V4[1], 30000 + s),
        )
        for phase, (src, sport) in enumerate(paths):
            for k in range(per_phase):
                tag = struct.pack(">I", (s * len(paths) + phase) * per_phase + k)
                dgrams.append(
                    netns.Datagram(src, sport, netns.SERVER_V4, PORT, proto.packet(rng, sid) + tag)
                )
    return sids, dgrams


def _summarise(
    mode: str, sessions: int, got: list[int | None], predicted: list[int | None]
) -> ModeResult:
    per = len(got) // sessions
    rows = tuple(tuple(got[i * per : (i + 1) * per]) for i in range(sessions))
    changed = sum(len(set(r)) > 1 for r in rows)
    agreed = sum(g == p for g, p in zip(got, predicted, strict=True))
    return ModeResult(mode, changed, got.count(None), agreed, len(got), rows)


def _live(
    lab: netns.Lab,
    modes: list[Mode],
    n: int,
    policy: SteeringPolicy,
    dgrams: list[netns.Datagram],
    sessions: int,
    progress: Callable[[str], None],
) -> list[ModeResult]:
    results = []
    for mode in modes:
        progress(f"running {MODE_LABEL[mode]} ...")
        socks = netns.open_group(n, netns.SERVER_V4, PORT)
        model = Group(profile(LATEST))
        for i in range(n):
            model.join(i)
        recorder = HashRecorder(socks) if mode == "tuple" else None
        handle = None if mode == "tuple" else attach(socks, policy, mode)
        if mode != "tuple":
            model.attach_policy(policy, mode)
        got = lab.exchange(dgrams, socks)
        predicted: list[int | None] = []
        for i, d in enumerate(dgrams):
            h = recorder.hash(i) if recorder is not None else 0
            predicted.append(model.index(h, d.payload))  # no member closes: index == name
        if recorder is not None:
            recorder.close()
        if handle is not None:
            handle.detach()
        for s in socks:
            s.close()
        results.append(_summarise(mode, sessions, got, predicted))
    return results


def _model_only(
    modes: list[Mode],
    n: int,
    policy: SteeringPolicy,
    dgrams: list[netns.Datagram],
    sessions: int,
    seed: int,
) -> list[ModeResult]:
    initval = random.Random(seed ^ 0x5EED).getrandbits(32)
    results = []
    for mode in modes:
        model = Group(profile(LATEST))
        for i in range(n):
            model.join(i)
        if mode != "tuple":
            model.attach_policy(policy, mode)
        got: list[int | None] = []
        for d in dgrams:
            h = model.flow_hash(d.dst, d.dport, d.src, d.sport, initval)
            got.append(model.index(h, d.payload))
        results.append(_summarise(mode, sessions, got, got))
    return results


def run_demo(
    *,
    sockets: int = 4,
    sessions: int = 200,
    per_phase: int = 3,
    protocol: str = "quic",
    backends: tuple[Literal["cbpf", "ebpf"], ...] = ("cbpf", "ebpf"),
    model_only: bool = False,
    seed: int = 1,
    progress: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    """Run the mobility scenario live (or on the model alone) and return the counts."""
    proto = PROTOCOLS[protocol]
    policy = SteeringPolicy(proto.spec, "jhash", sockets, seed=seed)
    _, dgrams = _traffic(proto, sessions, per_phase, seed)
    modes: list[Mode] = ["tuple", *backends]
    reason = None if model_only else (netns.netns_available() or bpf_available())
    if model_only:
        reason = "--model-only"
    if reason is None:
        results = netns.run_in_lab(_live, modes, sockets, policy, dgrams, sessions, progress)
        kernel = netns.run_isolated(_uname)
    else:
        results = _model_only(modes, sockets, policy, dgrams, sessions, seed)
        kernel = f"model of Linux {LATEST}"
    return DemoResult(reason is None, reason, kernel, sessions, sockets, protocol, tuple(results))


def _uname() -> str:
    import platform  # noqa: PLC0415 (only needed inside the namespace process)

    return f"Linux {platform.release()}"


def render(result: DemoResult, out: Any = None) -> None:
    """Print the side-by-side table (to *out*, default the current ``sys.stdout``)."""
    out = sys.stdout if out is None else out
    proto = PROTOCOLS[result.protocol]
    where = (
        f"{result.kernel}, two private network namespaces joined by a veth pair"
        if result.live
        else f"MODEL ONLY ({result.reason}); the kernel was not used"
    )
    print(
        f"sidkit demo: {result.sessions} sessions -> {result.sockets} sockets, {proto.description}",
        file=out,
    )
    print(f"  {where}", file=out)
    print(
        "  each client sends, changes port (NAT rebinding), sends, changes address "
        "(Wi-Fi -> LTE), sends",
        file=out,
    )
    print(file=out)
    head = f"  {'mode':24} {'sessions that changed socket':>30} {'lost':>6} {'model == kernel':>17}"
    print(head, file=out)
    for m in result.modes:
        pct = f"{m.changed}/{result.sessions} ({100 * m.changed / result.sessions:.0f}%)"
        agree = f"{m.agreed}/{m.total}" if result.live else "n/a (model)"
        print(f"  {MODE_LABEL[m.mode]:24} {pct:>30} {m.lost:>6} {agree:>17}", file=out)
    print(file=out)
    if result.live:
        print(
            "  model == kernel: sidkit predicted the socket of every datagram it counts, from "
            "the kernel's recorded flow hash (default) or the compiled program (steering).",
            file=out,
        )


def plot(result: DemoResult, path: str) -> Any:
    """Draw sessions x datagrams, coloured by socket, one panel per mode (needs matplotlib).

    A row is one session; a row of one colour is a session that stayed on its socket, and
    each change of socket is marked. Lost datagrams are white. Returns the matplotlib Figure
    after writing *path* (the format follows the file name's extension, as matplotlib
    decides). The drawing lives in ``sidkit._plot``.
    """
    from sidkit._plot import plot_demo  # noqa: PLC0415 (matplotlib only when asked for)

    return plot_demo(result, path)
