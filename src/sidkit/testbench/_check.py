# Strategy: a model says, per datagram, what *should* happen: a socket index, "pass" (the
# kernel's default selection decides), or DROP. Every sidkit model becomes that one shape --
# a SteeringPolicy's select(), nginx's cookie lookup (sidkit.quiclb), Envoy's quic_lb worker,
# Katran stable routing, "always the default", or any Python function -- so the comparison
# and the report are written once. "pass" is resolved by sidkit's own model of the default
# selection, sidkit.reuseport.Group, applied to the hash the kernel computed for that
# datagram (recorded by the bench, sidkit.testbench._bench: the hash's secret is random per
# namespace, so the kernel's hash is the one input taken from it). The socket the kernel
# actually chose with no program choosing is measured too, and the report counts where
# Group and the kernel agree -- every bench run is also a check of the Group model.
"""Models, expectations and the report of a bench run (private)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from sidkit.quiclb import (
    Config,
    QuicLbError,
    envoy_worker,
    katran_stable_routing_steering_policy,
    nginx_socket_cookie,
    server_id_index,
)
from sidkit.reuseport import Group
from sidkit.steering import FixedOffset, IndexField, SteeringError, SteeringPolicy
from sidkit.testbench._bench import DEFAULT_PORT, Delivery, Family, Feed, Fill, SocketInfo, deliver
from sidkit.testbench._program import Program, TestbenchError

__all__ = [
    "DROP",
    "Model",
    "ModelContext",
    "Outcome",
    "Report",
    "Row",
    "check",
    "default_model",
    "envoy_model",
    "katran_model",
    "model_from_spec",
    "nginx_model",
    "policy_model",
    "quiclb_model",
]


class _Drop:
    """The model's "this datagram is dropped" (the sender sees ECONNREFUSED)."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = _Drop()
Outcome: TypeAlias = int | _Drop | None


@attrs.frozen
class ModelContext:
    """What a model may know besides the payload: the sockets in bind order with cookies."""

    sockets: tuple[SocketInfo, ...]

    @property
    def n(self) -> int:
        return len(self.sockets)

    def by_cookie(self, cookie: int) -> int | None:
        """The index of the socket whose SO_COOKIE is *cookie*, or None."""
        for s in self.sockets:
            if s.cookie == cookie:
                return s.index
        return None


Model: TypeAlias = Callable[[bytes, ModelContext], Outcome]
"""``model(payload, context)``: a socket index, None for the default selection, or DROP."""


def policy_model(policy: SteeringPolicy) -> Model:
    """The model of a :class:`~sidkit.steering.SteeringPolicy`: ``policy.select(payload)``
    (None -- no SID, or an index past the group -- is the default selection)."""

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        index = policy.select(payload)
        return index if index is not None and index < ctx.n else None

    return model


def nginx_model() -> Model:
    """nginx's ``quic_bpf``: the key its helper reads (:func:`sidkit.quiclb.nginx_socket_cookie`)
    names the socket with that SO_COOKIE; no key, or a key no socket has (``-ENOENT``), is the
    default selection."""

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        key = nginx_socket_cookie(payload)
        return None if key is None else ctx.by_cookie(key)

    return model


def envoy_model(concurrency: int | None = None) -> Model:
    """Envoy's quic_lb worker selection (:func:`sidkit.quiclb.envoy_worker`) over *concurrency*
    workers (default: the number of sockets)."""

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        return envoy_worker(payload, concurrency or ctx.n)

    return model


def katran_model(first_id: int = 1) -> Model:
    """Katran stable routing: socket i serves server ID ``first_id + i``."""

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        return policy_model(katran_stable_routing_steering_policy(ctx.n, first_id))(payload, ctx)

    return model


def quiclb_model(config: Config, *, wrap: bool = False) -> Model:
    """QUIC-LB (draft-ietf-quic-load-balancers-21) on one host: socket i serves server ID i.
    The DCID is where :func:`sidkit.quiclb.steering_policy` reads it -- a short header's
    first ``config.cid_length`` octets after the first byte, a long header's DCID when its
    length octet is ``config.cid_length`` -- and :func:`sidkit.quiclb.server_id_index`
    decodes it (encrypted configurations included); anything else is the default selection."""

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        length = config.cid_length
        if len(payload) < 1:
            return None
        if payload[0] & 0xC0 == 0x40:
            dcid = payload[1 : 1 + length]
        elif payload[0] & 0xC0 == 0xC0 and len(payload) > 5 and payload[5] == length:
            dcid = payload[6 : 6 + length]
        else:
            return None
        if len(dcid) < length:
            return None
        return server_id_index(config, dcid, ctx.n, wrap=wrap)

    return model


def default_model() -> Model:
    """Every datagram goes where the kernel's default selection puts it."""

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        return None

    return model


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise TestbenchError(f"--expect: {what} must be an integer, got {text!r}") from None


def model_from_spec(spec: str) -> Model:
    """A model from the CLI's ``--expect`` text.

    ``default`` | ``drop`` | ``nginx`` | ``envoy[:N]`` | ``katran[:FIRST_ID]`` |
    ``quiclb:CONFIG_ID:SID_LEN:NONCE_LEN[:KEYHEX]`` (socket i serves server ID i) |
    ``modulo:N[:OFFSET]`` (the big-endian u32 at OFFSET modulo N, the kernel selftest's rule) |
    ``index:OFFSET[:LENGTH]`` (a big-endian field is the index) |
    ``jhash:OFFSET:LENGTH[:SEED]`` (sidkit's jhash policy over the group) |
    ``python:MODULE:FUNCTION`` (``FUNCTION(payload, context)``).
    """
    name, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    try:
        if name == "default" and not args:
            return default_model()
        if name == "drop" and not args:
            return lambda payload, ctx: DROP
        if name == "nginx" and not args:
            return nginx_model()
        if name == "envoy" and len(args) <= 1:
            return envoy_model(_int(args[0], "N") if args else None)
        if name == "katran" and len(args) <= 1:
            return katran_model(_int(args[0], "FIRST_ID") if args else 1)
        if name == "quiclb" and 3 <= len(args) <= 4:
            try:
                key = bytes.fromhex(args[3]) if len(args) > 3 else None
            except ValueError:
                raise TestbenchError(f"--expect {spec}: the key must be hex") from None
            config = Config(
                _int(args[0], "CONFIG_ID"),
                _int(args[1], "SID_LEN"),
                _int(args[2], "NONCE_LEN"),
                key,
            )
            return quiclb_model(config)
        if name == "modulo" and 1 <= len(args) <= 2:
            n = _int(args[0], "N")
            off = _int(args[1], "OFFSET") if len(args) > 1 else 0
            return policy_model(SteeringPolicy(FixedOffset(off, 4), "modulo", n))
        if name == "index" and 1 <= len(args) <= 2:
            off = _int(args[0], "OFFSET")
            length = _int(args[1], "LENGTH") if len(args) > 1 else 1
            field = IndexField(0, length, 0, (1 << (8 * length)) - 1)
            return _lazy_n(
                lambda n: SteeringPolicy(FixedOffset(off, length), "index", n, field=field)
            )
        if name == "jhash" and 2 <= len(args) <= 3:
            off, length = _int(args[0], "OFFSET"), _int(args[1], "LENGTH")
            seed = _int(args[2], "SEED") if len(args) > 2 else 0
            return _lazy_n(lambda n: SteeringPolicy(FixedOffset(off, length), "jhash", n, seed))
        if name == "python" and len(args) == 2:
            try:
                fn = getattr(importlib.import_module(args[0]), args[1])
            except (ImportError, AttributeError) as exc:
                raise TestbenchError(f"--expect {spec}: {exc}") from None
            if not callable(fn):
                raise TestbenchError(f"--expect {spec}: not a function")
            return fn  # type: ignore[no-any-return]
    except (SteeringError, QuicLbError) as exc:
        raise TestbenchError(f"--expect {spec}: {exc}") from None
    raise TestbenchError(
        f"--expect {spec!r}: expected default, drop, nginx, envoy[:N], katran[:FIRST_ID], "
        "quiclb:CONFIG_ID:SID_LEN:NONCE_LEN[:KEYHEX], "
        "modulo:N[:OFFSET], index:OFFSET[:LENGTH], jhash:OFFSET:LENGTH[:SEED] "
        "or python:MODULE:FUNCTION"
    )


def _lazy_n(make: Callable[[int], SteeringPolicy]) -> Model:
    """A policy model whose policy is sized to the group when the group is known."""
    cache: dict[int, Model] = {}

    def model(payload: bytes, ctx: ModelContext) -> Outcome:
        if ctx.n not in cache:
            cache[ctx.n] = policy_model(make(ctx.n))
        return cache[ctx.n](payload, ctx)

    return model


@attrs.frozen
class Row:
    """One datagram's line of the report. *expected* is the socket the model predicts (a
    "pass" prediction resolved to the default socket) or None for a predicted drop."""

    index: int
    socket: int | None
    verdict: str
    expected: int | None
    default: int | None
    payload: bytes
    src: str
    sport: int
    agree: bool
    hash: int | None = None
    group_default: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "socket": self.socket,
            "verdict": self.verdict,
            "expected": self.expected,
        }

    def describe(self) -> str:
        head = self.payload[:24].hex() + ("..." if len(self.payload) > 24 else "")
        got = "dropped" if self.socket is None else f"socket {self.socket}"
        want = "drop" if self.expected is None else f"socket {self.expected}"
        return (
            f"datagram {self.index} ({len(self.payload)} bytes {head or '(empty)'} from "
            f"{self.src}:{self.sport}): {got} ({self.verdict}), expected {want}"
        )


@attrs.frozen
class Report:
    """A bench run: per datagram, and in sum. ``checked`` is False when no model was given."""

    program: str
    sockets: int
    rows: tuple[Row, ...]
    checked: bool
    cookies: tuple[int, ...] = ()

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def agree(self) -> int:
        return sum(r.agree for r in self.rows)

    @property
    def disagreements(self) -> list[Row]:
        return [r for r in self.rows if not r.agree]

    @property
    def ok(self) -> bool:
        return self.agree == self.total

    def group_agreement(self) -> tuple[int, int]:
        """(agree, compared): datagrams whose default socket sidkit's Group model, given the
        kernel's recorded hash, put where the kernel put them with no program choosing."""
        compared = [r for r in self.rows if r.hash is not None and r.default is not None]
        return sum(r.group_default == r.default for r in compared), len(compared)

    def verdicts(self) -> dict[str, int]:
        out = {"selected": 0, "pass": 0, "drop": 0}
        for r in self.rows:
            out[r.verdict] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``sidkit testbench --json`` (issue 16's schema)."""
        return {
            "program": self.program,
            "sockets": self.sockets,
            "datagrams": [r.to_json() for r in self.rows],
            "summary": {"agree": self.agree, "total": self.total},
        }


def _rows(
    deliveries: Sequence[Delivery], infos: Sequence[SocketInfo], model: Model | None
) -> list[Row]:
    group = Group()
    for i in range(len(infos)):
        group.join(i)

    ctx = ModelContext(tuple(infos))
    rows = []
    for d in deliveries:
        expected: int | None
        if model is None:
            expected, agree = d.socket, True
        else:
            outcome = model(d.probe.payload, ctx)
            if isinstance(outcome, _Drop):
                expected = None
            elif outcome is None:
                expected = d.default if d.hash is None else group.index(d.hash)
            elif type(outcome) is int and 0 <= outcome < ctx.n:
                expected = outcome
            else:
                raise TestbenchError(
                    f"the model returned {outcome!r} for datagram {d.index}; expected a socket "
                    f"index 0..{ctx.n - 1}, None (default selection) or DROP"
                )
            agree = d.socket == expected
        rows.append(
            Row(
                d.index,
                d.socket,
                d.verdict,
                expected if model is not None else None,
                d.default,
                d.probe.payload,
                d.probe.src,
                d.probe.sport,
                agree,
                d.hash,
                None if d.hash is None else group.index(d.hash),
            )
        )
    return rows


def check(
    program: Program,
    sockets: int,
    feed: Feed,
    model: Model | None = None,
    *,
    maps: Mapping[str, Fill] | None = None,
    values: Mapping[str, Mapping[bytes, bytes]] | None = None,
    port: int = DEFAULT_PORT,
    family: Family = "ipv4",
) -> Report:
    """Run *program* on a live group of *sockets* sockets, send *feed*, and compare every
    delivery with *model* (see :func:`sidkit.testbench.deliver` for the run)."""
    deliveries, infos = deliver(
        program, sockets, feed, maps=maps, values=values, port=port, family=family
    )
    return Report(
        program.name,
        sockets,
        tuple(_rows(deliveries, infos, model)),
        model is not None,
        tuple(s.cookie for s in infos),
    )
