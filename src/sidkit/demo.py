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

from sidkit._errors import InputValueError
from sidkit._validate import check_int, show
from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available
from sidkit.kernel import LATEST, profile
from sidkit.reuseport import Group, HashRecorder, Member
from sidkit.steering import AnyOf, FixedOffset, Guard, SteeringHandle, SteeringPolicy, attach

__all__ = [
    "MAX_DATAGRAMS",
    "MAX_SESSIONS",
    "MAX_SOCKETS",
    "MODE_LABEL",
    "PROTOCOLS",
    "DemoResult",
    "ModeResult",
    "Protocol",
    "check_sizes",
    "plot",
    "render",
    "require_plot",
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
#: Upper bounds of the demo's sizes, checked before any work (the CLI's --help quotes them).
#: Each session sends from its own source port in each 10,000-port range (10000+s, 20000+s,
#: 30000+s, 40000+s), so more sessions would reuse another session's port and merge their
#: flows; 64 sockets and 100 datagrams per move already take minutes live, and past them the
#: datagram lists (sessions x moves x datagrams, held in memory) only cost time and RAM.
MAX_SOCKETS: Final = 64
MAX_SESSIONS: Final = 10_000
MAX_DATAGRAMS: Final = 100


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


def check_sizes(
    sockets: object, sessions: object, per_phase: object, *, low_sockets: int = 1
) -> None:
    """Refuse demo sizes outside ``1..MAX_*`` with one sidkit error naming the option."""
    check_int(sockets, low_sockets, MAX_SOCKETS, "--sockets")
    check_int(sessions, 1, MAX_SESSIONS, "--sessions")
    check_int(per_phase, 1, MAX_DATAGRAMS, "--datagrams")


def require_plot() -> None:
    """Raise a one-line sidkit error now if ``--plot`` cannot draw: the CLI calls this before
    the demo runs, so a missing extra does not cost a whole live run first."""
    try:
        import matplotlib  # noqa: PLC0415, F401
        import numpy  # noqa: PLC0415, F401
    except ImportError as exc:
        raise InputValueError(
            f"--plot needs {exc.name or 'matplotlib'}, which cannot be imported here: "
            "pip install 'sidkit[plot]'",
            code="no-plot-extra",
        ) from exc


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
    """Run the mobility scenario live (or on the model alone) and return the counts.

    Sizes beyond ``MAX_SOCKETS``/``MAX_SESSIONS``/``MAX_DATAGRAMS`` are refused first."""
    check_sizes(sockets, sessions, per_phase)
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


def plot(
    result: DemoResult, path: str, *, max_rows: int | None = None, row_inches: float | None = None
) -> Any:
    """Draw sessions x datagrams, coloured by socket, one panel per mode (needs matplotlib).

    A row is one session; a row of one colour is a session that stayed on its socket, and
    each change of socket is marked. Lost datagrams are white. Returns the matplotlib Figure
    after writing *path* (the format follows the file name's extension, as matplotlib
    decides). The drawing lives in ``sidkit._plot``.
    """
    from sidkit import _plot  # noqa: PLC0415 (matplotlib only when asked for)

    return _plot.plot_demo(
        result,
        path,
        labels=MODE_LABEL,
        phases=PHASES,
        max_rows=_plot.MAX_ROWS if max_rows is None else max_rows,
        row_inches=_plot.ROW_INCHES if row_inches is None else row_inches,
    )


# --- the restart scenario (``sidkit demo --restart``) -------------------------------------------
#
# Sessions that must survive more than a moving client: the server restarts (a new generation
# of sockets joins the group and takes the new sessions), a worker of the new generation
# crashes (its socket closes: swap-remove renumbers the group) and the old generation is
# retired once its sessions ended. Four ways to steer replay the same traffic; each is
# predicted datagram by datagram by its model (the reuseport Group model from the kernel's
# recorded hash, the compiled cBPF program, or SessionTableModel).

RestartMode = Literal["tuple", "cbpf", "flow", "table"]
RESTART_LABEL: Final[dict[str, str]] = {
    "tuple": "5-tuple hash (default)",
    "cbpf": "SID hash (cBPF)",
    "flow": "3-tuple flow table",
    "table": "SID session table",
}
RESTART_MODES: Final[tuple[RestartMode, ...]] = ("tuple", "cbpf", "flow", "table")


@attrs.frozen
class RestartModeResult:
    """One mode of the restart scenario. ``broken`` counts sessions that had a datagram
    delivered to a socket other than the one holding them (the socket of their first
    datagram); ``orphaned`` those whose holding socket closed in the crash (no steering
    can keep them; they are not counted as broken); ``new_on_working`` the sessions started
    after the restart whose first datagram reached the new generation; ``agreed`` the
    datagrams whose socket the model predicted."""

    mode: str
    sessions: int
    broken: int
    orphaned: int
    new_on_working: int
    lost: int
    datagrams: int
    agreed: int
    counters: tuple[tuple[str, int], ...] = ()
    #: per session, per time slot (send phase x datagram): the socket, or None where the
    #: session sent nothing (or the datagram was lost) -- what ``--plot`` draws
    timeline: tuple[tuple[int | None, ...], ...] = ()
    crashed: int | None = None


@attrs.frozen
class RestartResult:
    live: bool
    reason: str | None
    kernel: str
    old_sessions: int
    new_sessions: int
    sockets: int
    protocol: str
    modes: tuple[RestartModeResult, ...]


@attrs.frozen
class _Step:
    """One step of the scenario: datagrams to send (with their session), or an event."""

    kind: Literal["send", "restart", "crash", "retire"]
    dgrams: tuple[netns.Datagram, ...] = ()
    sessions: tuple[int, ...] = ()


def _restart_steps(
    proto: Protocol, old: int, new: int, per_phase: int, seed: int
) -> tuple[list[_Step], list[bytes]]:
    """The scenario's traffic: sessions ``0..old-1`` start before the restart, ``old..`` after."""
    rng = random.Random(seed)
    sids = [rng.randbytes(proto.sid_length) for _ in range(old + new)]
    tag = iter(range(1 << 30))

    def phase(sessions: range, src: str, port0: int) -> _Step:
        dgrams, owners = [], []
        for s in sessions:
            for _ in range(per_phase):
                payload = proto.packet(rng, sids[s]) + struct.pack(">I", next(tag))
                sport = port0 + (s if s < old else s - old)
                dgrams.append(netns.Datagram(src, sport, netns.SERVER_V4, PORT, payload))
                owners.append(s)
        return _Step("send", tuple(dgrams), tuple(owners))

    def both(*steps: _Step) -> _Step:
        return _Step(
            "send",
            tuple(d for s in steps for d in s.dgrams),
            tuple(o for s in steps for o in s.sessions),
        )

    olds, news = range(old), range(old, old + new)
    v4a, v4b = netns.CLIENT_V4
    steps = [
        phase(olds, v4a, 10000),  # start
        phase(olds, v4a, 20000),  # NAT rebinding
        _Step("restart"),
        phase(news, v4a, 40000),  # new sessions on the restarted server
        both(phase(olds, v4b, 30000), phase(news, v4a, 40000)),  # Wi-Fi -> LTE
        _Step("crash"),
        both(phase(olds, v4b, 30000), phase(news, v4a, 40000)),
        _Step("retire"),
        phase(news, v4a, 40000),
    ]
    return steps, sids


class _RestartRun:
    """One mode through the scenario, live (with *lab*) or on the model alone."""

    def __init__(
        self,
        mode: RestartMode,
        proto: Protocol,
        n: int,
        seed: int,
        old: int,
        sids: list[bytes],
        lab: netns.Lab | None,
    ) -> None:
        from sidkit.sessions import (  # noqa: PLC0415 (the restart scenario only)
            SessionSpec,
            SessionTable,
            SessionTableModel,
            possible_cpus,
        )

        self.mode, self.proto, self.n, self.seed, self.old, self.sids = (
            mode,
            proto,
            n,
            seed,
            old,
            sids,
        )
        self.lab = lab
        self.group = Group(profile(LATEST))
        self.socks: dict[int, Any] = {}
        self.initval = random.Random(seed ^ 0x5EED).getrandbits(32)
        self.recorder: HashRecorder | None = None
        self.steering: SteeringHandle | None = None  # the cBPF mode's program
        self.table: Any = None
        self.model: Any = None
        self.gens: list[int] = []
        self.crashed: int | None = None
        self.gen1: list[int] = []
        if mode in ("flow", "table"):
            key: Literal["sid", "3-tuple"] = "sid" if mode == "table" else "3-tuple"
            spec = SessionSpec(key, SteeringPolicy(proto.spec, "jhash", n, seed=seed), seed=seed)
            self.spec = spec
            self.model = SessionTableModel(spec, capacity=4096, cpus=possible_cpus())
            if lab is not None:
                self.table = SessionTable(spec, capacity=4096)
        self._bind(n)
        if mode == "tuple" and lab is not None:
            self.recorder = HashRecorder([self.socks[0]])
        self._generation(list(range(n)))
        self._steer()

    def _bind(self, n: int) -> None:
        names = range(max(self.socks, default=-1) + 1, max(self.socks, default=-1) + 1 + n)
        if self.lab is not None:
            for name, s in zip(names, netns.open_group(n, netns.SERVER_V4, PORT), strict=True):
                self.socks[name] = s
        else:
            for name in names:
                self.socks[name] = None
        for name in names:
            self.group.join(name)

    def _generation(self, names: list[int]) -> None:
        if self.model is None:
            return
        gen = self.model.add_generation(names)
        self.model.set_working(gen)
        if self.table is not None:
            assert self.table.add_generation([self.socks[x] for x in names]) == gen
            self.table.set_working(gen)
            if not self.gens:
                self.table.attach(self.socks[names[0]])
        self.gens.append(gen)

    def _steer(self) -> None:
        """cBPF: (re)attach the stateless program over the group as it is now."""
        if self.mode != "cbpf":
            return
        policy = SteeringPolicy(self.proto.spec, "jhash", len(self.group.socks), seed=self.seed)
        self.group.attach_policy(policy, "cbpf")
        if self.lab is not None:
            order = [self.socks[int(m.name)] for m in self.group.socks]  # type: ignore[call-overload]
            # One owner per group: the previous program goes before its replacement comes.
            if self.steering is not None:
                self.steering.detach()
            self.steering = attach(order, policy, "cbpf")

    def _close(self, name: int) -> None:
        if self.socks.get(name) is not None:
            self.socks[name].close()
        del self.socks[name]
        self.group.close(name)
        if self.model is not None:
            self.model.close(name)

    def event(self, kind: str) -> None:
        if kind == "restart":
            first = max(self.socks) + 1
            self._bind(self.n)
            self.gen1 = list(range(first, first + self.n))
            self._generation(self.gen1)
        elif kind == "crash":
            victim = self.gen1[min(1, len(self.gen1) - 1)]
            self.crashed = victim
            cookie = None
            if self.table is not None:
                from sidkit.bpf._syscall import socket_cookie  # noqa: PLC0415

                cookie = socket_cookie(self.socks[victim])
            self._close(victim)
            if self.model is not None:
                self.model.remove_socket(self.gens[-1], victim)
            if self.table is not None:
                self.table.remove_socket(self.gens[-1], cookie)
        else:  # retire: the old sessions ended, generation 0 closes
            if self.mode == "table":
                for sid in self.sids[: self.old]:
                    key = self.spec.key_of(self.proto.packet(random.Random(0), sid))
                    if key is not None:
                        self.model.end(key)
                        if self.table is not None:
                            self.table.end(key)
            for name in range(self.n):
                self._close(name)
            if self.model is not None:
                from sidkit.sessions import kernel_clock_ns  # noqa: PLC0415

                force = self.mode == "flow"  # it cannot know which flows ended
                self.model.retire(self.gens[0], now=kernel_clock_ns(), force=force)
                if self.table is not None:
                    self.table.retire(self.gens[0], force=force)
        self._steer()

    def send(self, step: _Step) -> tuple[list[int | None], list[int | None]]:
        from sidkit.sessions import kernel_clock_ns  # noqa: PLC0415

        names = list(self.socks)
        now = kernel_clock_ns()
        got: list[int | None]
        if self.lab is not None:
            where = self.lab.exchange(step.dgrams, [self.socks[x] for x in names])
            got = [None if w is None else names[w] for w in where]
        predicted: list[int | None] = []
        for d in step.dgrams:
            if self.model is not None:
                predicted.append(self.model.deliver(d.payload, now, src=(d.src, d.sport)).sock)
                continue
            if self.recorder is not None:
                h = self.recorder.hash(int.from_bytes(d.payload[-4:], "big"))
            else:
                h = self.group.flow_hash(d.dst, d.dport, d.src, d.sport, self.initval)
            m = self.group.select(h, d.payload)
            predicted.append(m.name if isinstance(m, Member) else None)  # type: ignore[arg-type]
        if self.lab is None:
            got = list(predicted)
        return got, predicted

    def close(self) -> tuple[tuple[str, int], ...]:
        counters: tuple[tuple[str, int], ...] = ()
        if self.table is not None:
            counters = tuple(self.table.counters().items())
            self.table.close()
        elif self.model is not None:
            counters = tuple(self.model.counters.items())
        if self.recorder is not None:
            self.recorder.close()
        if self.steering is not None:
            self.steering.detach()
        for s in self.socks.values():
            if s is not None:
                s.close()
        return counters


def _restart_mode(
    mode: RestartMode,
    lab: netns.Lab | None,
    proto: Protocol,
    n: int,
    seed: int,
    old: int,
    steps: list[_Step],
    sids: list[bytes],
) -> RestartModeResult:
    run = _RestartRun(mode, proto, n, seed, old, sids, lab)
    per_session: dict[int, list[int | None]] = {}
    phases = sum(step.kind == "send" for step in steps)
    width = max(
        (step.sessions.count(step.sessions[0]) for step in steps if step.sessions), default=1
    )
    timeline = [[None] * (phases * width) for _ in sids]  # type: list[list[int | None]]
    phase = -1
    lost = total = agreed = 0
    try:
        for step in steps:
            if step.kind != "send":
                run.event(step.kind)
                continue
            phase += 1
            got, predicted = run.send(step)
            slot: dict[int, int] = {}
            for owner, g, p in zip(step.sessions, got, predicted, strict=True):
                total += 1
                agreed += g == p
                lost += g is None
                per_session.setdefault(owner, []).append(g)
                j = slot.get(owner, 0)
                slot[owner] = j + 1
                if j < width:
                    timeline[owner][phase * width + j] = g
    finally:
        counters = run.close()
    broken = orphaned = new_on_working = 0
    for owner, where in per_session.items():
        delivered = [w for w in where if w is not None]
        holder = delivered[0] if delivered else None
        if owner >= old and holder in run.gen1:
            new_on_working += 1
        if holder is not None and holder == run.crashed:
            orphaned += 1
        elif any(w != holder for w in delivered):
            broken += 1
    return RestartModeResult(
        RESTART_LABEL[mode],
        len(per_session),
        broken,
        orphaned,
        new_on_working,
        lost,
        total,
        agreed,
        counters,
        tuple(tuple(row) for row in timeline),
        run.crashed,
    )


def _restart_all(
    lab: netns.Lab | None,
    proto: Protocol,
    n: int,
    seed: int,
    old: int,
    steps: list[_Step],
    sids: list[bytes],
    progress: Callable[[str], None],
) -> list[RestartModeResult]:
    out = []
    for mode in RESTART_MODES:
        progress(f"running {RESTART_LABEL[mode]} (restart) ...")
        out.append(_restart_mode(mode, lab, proto, n, seed, old, steps, sids))
    return out


def run_restart_demo(
    *,
    sockets: int = 4,
    sessions: int = 200,
    per_phase: int = 3,
    protocol: str = "quic",
    model_only: bool = False,
    seed: int = 1,
    progress: Callable[[str], None] = lambda _msg: None,
) -> RestartResult:
    """Run the restart scenario: *sessions* start on generation 0 (*sockets* sockets),
    half as many new ones after the restart; every mode live (or on the model alone)."""
    if type(sockets) is not int or sockets < 2:
        raise InputValueError(
            "the restart scenario crashes one socket of the new generation and keeps the "
            f"rest working: --sockets must be at least 2, got {show(sockets)}"
        )
    check_sizes(sockets, sessions, per_phase, low_sockets=2)
    proto = PROTOCOLS[protocol]
    new = max(1, sessions // 2)
    steps, sids = _restart_steps(proto, sessions, new, per_phase, seed)
    reason = "--model-only" if model_only else (netns.netns_available() or bpf_available())
    if reason is None:
        modes = netns.run_in_lab(
            _restart_all, proto, sockets, seed, sessions, steps, sids, progress
        )
        kernel = netns.run_isolated(_uname)
    else:
        modes = _restart_all(None, proto, sockets, seed, sessions, steps, sids, progress)
        kernel = f"model of Linux {LATEST}"
    return RestartResult(
        reason is None, reason, kernel, sessions, new, sockets, protocol, tuple(modes)
    )


def render_restart(result: RestartResult, out: Any = None) -> None:
    """Print the restart scenario's table."""
    out = sys.stdout if out is None else out
    proto = PROTOCOLS[result.protocol]
    where = (
        f"{result.kernel}, two private network namespaces joined by a veth pair"
        if result.live
        else f"MODEL ONLY ({result.reason}); the kernel was not used"
    )
    n = result.sockets
    print(
        f"sidkit demo --restart: {result.old_sessions} sessions on generation 0 ({n} sockets), "
        f"{result.new_sessions} new after the restart, {proto.description}",
        file=out,
    )
    print(f"  {where}", file=out)
    print(
        "  clients change port; the server restarts (generation 1, "
        f"{n} new sockets, becomes working); old clients change address; a generation-1 "
        "worker crashes; old sessions end and generation 0 is retired",
        file=out,
    )
    print(file=out)
    print(
        f"  {'mode':24} {'sessions':>8} {'broken':>7} {'orphaned':>8} {'new on working':>15} "
        f"{'lost':>5} {'model == kernel':>16}",
        file=out,
    )
    for m in result.modes:
        new = f"{m.new_on_working}/{result.new_sessions}"
        agree = f"{m.agreed}/{m.datagrams}" if result.live else "n/a (model)"
        print(
            f"  {m.mode:24} {m.sessions:>8} {m.broken:>7} {m.orphaned:>8} {new:>15} "
            f"{m.lost:>5} {agree:>16}",
            file=out,
        )
    print(file=out)
    print(
        "  broken: a datagram of the session reached a socket other than the one holding it; "
        "orphaned: its own socket closed in the crash (no steering can keep it).",
        file=out,
    )


def to_json(result: DemoResult | RestartResult) -> dict[str, Any]:
    """The ``--json`` object: ``{"scenario", "kernel", "modes": [...]}`` (the issue's shape);
    ``new_on_working`` is null in the mobility scenario, which has no generations."""
    if isinstance(result, RestartResult):
        modes = [
            {
                "mode": m.mode,
                "sessions": m.sessions,
                "broken": m.broken,
                "orphaned": m.orphaned,
                "new_on_working": m.new_on_working,
                "lost": m.lost,
                "datagrams": m.datagrams,
                "model_agrees": m.agreed,
            }
            for m in result.modes
        ]
        return {"scenario": "restart", "kernel": result.kernel, "modes": modes}
    return {
        "scenario": "mobility",
        "kernel": result.kernel,
        "modes": [
            {
                "mode": MODE_LABEL[m.mode],
                "sessions": result.sessions,
                "broken": m.changed,
                "orphaned": 0,
                "new_on_working": None,
                "lost": m.lost,
                "datagrams": m.total,
                "model_agrees": m.agreed,
            }
            for m in result.modes
        ],
    }


RESTART_EVENTS: Final = ("new port", "restart", "address change", "crash", "retire")


def plot_restart(result: RestartResult, path: str, *, rows: int = 40) -> Any:
    """Draw the restart scenario: one panel per mode, one row per session (the first *rows*
    old sessions and the first *rows* // 2 new ones), one cell per datagram in time, coloured
    by the socket that received it -- generation 0 in blues, generation 1 in oranges --
    white where the session sent nothing. A row that changes colour is a broken session; a
    cross marks the socket that crashed. Needs matplotlib; returns the Figure."""
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
        import numpy  # noqa: PLC0415
        from matplotlib.colors import ListedColormap  # noqa: PLC0415
    except ImportError as exc:
        from sidkit._errors import InputValueError  # noqa: PLC0415

        raise InputValueError("--plot needs matplotlib: pip install 'sidkit[plot]'") from exc
    n = result.sockets
    blues = plt.get_cmap("Blues")(numpy.linspace(0.45, 0.95, n))
    oranges = plt.get_cmap("Oranges")(numpy.linspace(0.35, 0.9, n))
    cmap = ListedColormap(numpy.vstack([blues, oranges])).with_extremes(bad="white")
    old = result.old_sessions
    pick = list(range(min(rows, old))) + list(range(old, old + min(rows // 2, result.new_sessions)))
    fig, axes = plt.subplots(
        1, len(result.modes), figsize=(3.2 * len(result.modes) + 0.8, 6), squeeze=False
    )
    for ax, m in zip(axes[0], result.modes, strict=True):
        grid = numpy.array(
            [[numpy.nan if s is None else s for s in m.timeline[i]] for i in pick], dtype=float
        )
        ax.imshow(
            numpy.ma.masked_invalid(grid),
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            vmin=-0.5,
            vmax=2 * n - 0.5,
        )
        width = grid.shape[1] // 6
        for k, label in enumerate(RESTART_EVENTS, start=1):
            ax.axvline(k * width - 0.5, color="black", linewidth=1, linestyle="--")
            ax.text(k * width - 0.5, -1, label, rotation=90, ha="center", va="bottom", fontsize=7)
        ax.axhline(min(rows, old) - 0.5, color="black", linewidth=1)
        if m.crashed is not None:
            ys, xs = numpy.nonzero(grid == m.crashed)
            ax.scatter(xs, ys, marker="x", s=6, color="black", linewidths=0.6)
        ax.set_title(f"{m.mode}\n{m.broken} broken, {m.orphaned} orphaned", fontsize=9, pad=58)
        ax.set_xlabel("datagram, in time")
        ax.set_yticks([])
    axes[0][0].set_ylabel(f"old sessions (top {min(rows, old)}), new sessions (below)")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        from sidkit._errors import InputValueError  # noqa: PLC0415

        raise InputValueError(f"cannot write the plot to {path}: {exc}") from exc
    return fig
