# Strategy: one pass over a capture, holding only per-flow and per-tuple counters. A
# datagram with a session ID joins the flow of that ID, one without joins the flow of its
# bidirectional 5-tuple. Memory grows with flows and tuples, never with datagrams.
#
# The reference path sends every datagram through the plugin Extractor. The fast path (the
# default; FlowAnalyzer(fast=False) turns it off, and the tests hold the two to identical
# reports) asks the plugins only where it must. Per first byte of the payload it knows what
# the Extractor would do: no configured protocol claims the byte (no ID); the byte is a QUIC
# short header whose DCID length is learned (below), so a DCID that starts with a CID seen in
# a long header is that CID; or the protocol that owns the byte has *exact* locations
# (sidkit.extract.SidLocation.exact: where one applies, the plugin returns exactly its
# bytes). Then the ID is a slice, and SID bytes + tuple key find the tuple's counters in one
# dict lookup. Everything else -- long headers, which also carry the CID linking below,
# handshake messages, unknown traffic -- takes the reference path. For classic pcap the
# record loop, the Ethernet/IPv4/UDP check and all of this are one loop over the read
# buffers (_read.read_pcap), which is what `sidkit flows` spends its time in.
#
# A flow is a set of session IDs that the traffic itself proves to be one session. Each ID
# maps to its flow; when the traffic links IDs of two flows, the older flow absorbs the
# younger, whose IDs are re-pointed (links are rare: one per long header at most):
#
# * QUIC long headers carry both connection IDs (RFC 9000 section 17.2): the DCID chosen by
#   the receiver and the SCID chosen by the sender. Linking DCID with SCID for every long
#   header joins the client's Initial (random original DCID + client CID), the server's
#   Initial/Handshake (client CID + server CID), Retry and Version Negotiation into one
#   flow that contains both directions' CIDs, so the 1-RTT packets of both directions, which
#   carry only a DCID, land in it too.
# * A QUIC short header does not say how long its DCID is (RFC 8999 section 5.2); each
#   endpoint chooses the length of the CIDs sent *to* it, zero included (RFC 9000 section
#   5.1). The module learns it per endpoint from the same long headers, in this order: a
#   DCID that starts with a connection ID already seen; the length of the SCIDs the
#   receiving endpoint put in its long headers (0 for an empty SCID); the length the other
#   side of the connection on this path chose (the flow remembers each endpoint's length:
#   how a rebound client's new address is known); the configured ``quic.cid_length``; the
#   length of the SCIDs the sending endpoint's peers used; the only SCID length seen so
#   far. The extraction itself is the plugin's, run with that ``cid_length`` -- except in
#   the first case on the fast path, where the plugin's exact short-header location for that
#   length makes the CID seen the answer, and while no long header has been seen with a
#   configured length, which the fast path then slices.
# * A short header with the fixed bit clear (0x00..0x3f, RFC 9287 greasing) is QUIC when its
#   DCID starts with a CID seen in a long header (the plugin's known_cids rule, with the
#   learned CIDs), in QUIC's configured place among the protocols that claim the byte; the
#   fast path sends such a datagram to the reference path (KIND_GREASED), and any other
#   datagram of that byte the way the byte's base kind says.
# * A datagram with an empty DCID (to an endpoint that chose zero-length CIDs, which finds
#   its connection by address, RFC 9000 section 5.2) has no ID: it joins the SID flow that
#   last started using its tuple or the reverse one (the path index, kept where a flow's
#   tuple counters are created), and a long header's SCID -- the plugin returns nothing for
#   an empty DCID, so the invariant header is read here -- is linked into that flow.
# * A WireGuard handshake response carries the responder's sender index beside the
#   initiator's receiver index (whitepaper section 5.4.3): the two are linked the same way.
# * DTLS CIDs (RFC 9146 section 3, RFC 9147 section 9) have no length on the wire either:
#   the connection_id extension of a ClientHello/ServerHello carries the CID its *sender*
#   wants to receive. The module keeps that length per receiving endpoint (the hello's
#   source address + port; the plugin's hello_cid_length) and extracts the CID records
#   sent *to* that endpoint with it, through the plugin; elsewhere the configured
#   ``dtls.cid_length`` (one length or a set) applies. Hellos always take the reference
#   path; once a length is learned, so do the CID-record bytes (the fast path's DTLS
#   slices assumed the configured length).
#
# What cannot be linked without decryption: connection IDs issued in NEW_CONNECTION_ID frames
# (RFC 9000 section 19.15) that a peer switches to, as in an active migration -- such a
# switch starts a new flow. A NAT rebinding, which keeps the CID, stays one flow.
"""Group a capture's UDP datagrams into flows by session ID (``sidkit flows``)."""

from __future__ import annotations

import gc
import inspect
import operator
import os
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, BinaryIO

from sidkit._errors import InputTypeError, InputValueError, SidkitError
from sidkit._validate import as_bytes, as_list, check_uint, show
from sidkit.extract import Extractor
from sidkit.flows._capture import Capture, open_capture
from sidkit.flows._decode import LINKTYPES, tuple_key
from sidkit.flows._protocols import default_protocols, split_options
from sidkit.flows._read import Progress, read_into, read_pcap, read_records
from sidkit.flows._reassembly import Reassembler
from sidkit.flows._report import (
    Flow,
    FlowReport,
    Summary,
    addr,
    trusted_flow,
    trusted_stats,
)
from sidkit.flows._state import (
    DEFAULT_MAX_FLOWS,
    KIND_EXACT,
    KIND_GREASED,
    KIND_KNOWN,
    KIND_LONG,
    KIND_NONE,
    KIND_SLOW,
    By,
    ExactLocation,
    FlowLimitReached,
    FlowState,
    PathIndex,
    SidKey,
    TupleCounter,
    pair_counter,
)
from sidkit.flows._state import reverse_key as _reverse
from sidkit.keys import FiveTuple, SessionId
from sidkit.plugin import PluginError, PluginHost, default_host

__all__ = ["FlowAnalyzer", "analyze", "sid_key"]

_new = object.__new__
# FiveTuple is frozen (its attrs __setattr__ refuses): _five_tuple writes its slots through
# their descriptors, as sidkit.keys does for SessionId
_FT = FiveTuple.__dict__
_ft_src, _ft_sport, _ft_dst, _ft_dport = (_FT[n].__set__ for n in ("src", "sport", "dst", "dport"))
_ft_protocol, _ft_ct_ctx, _ft_ct_hash = (
    _FT[n].__set__ for n in ("protocol", "_ct_ctx", "_ct_hash")
)
_PORTS = struct.Struct("!HH")
_second = operator.itemgetter(1)
_dict_set = dict.__setitem__
_hex = bytes.hex
# packed address -> its ipaddress object, for the FiveTuples the plugins are handed
_IPS: dict[bytes, IPv4Address | IPv6Address] = {}


# The cyclic garbage collector is paused while a capture is read and while its report is
# built. Both make long-lived objects by the hundred thousand -- per flow a FlowState, its
# dicts and lists, its tuple counters; per flow and tuple the report's values -- and every
# collection that they trigger walks all of them (and the growing ID and path tables) to free
# nothing: the analyzer makes no reference cycles that become garbage while it reads, and
# holds none itself (a counter names its flow by index), so reference counting frees its
# temporaries at once and the whole analyzer when it is dropped
# (tests/flows/test_flows_gc.py holds it to both on every capture the tests have). The walks
# were a quarter of the CPU time of a handshake-heavy capture (issue 17). The pause is
# counted so that analyses in several threads end it once, with the last, and it restores
# what it found: collection stays off if the caller had turned it off (a progress callback
# runs inside the pause: what it leaves in cycles waits for the end). When it ends, what
# was made during it and survives -- the report -- is moved into the oldest generation,
# where surviving objects end up anyway, instead of being walked by the young-generation
# collection that the first allocation after the pause would run over every object made
# during it (gc.freeze() then gc.unfreeze(): two list splices, no walk). That is skipped if
# the program has frozen objects itself (gc.get_freeze_count()), which unfreezing would
# release.
_GC_LOCK = threading.Lock()
_gc_state = [0, False]  # pauses under way; whether collection was on when the first began


@contextmanager
def gc_paused() -> Iterator[None]:
    """Automatic cyclic garbage collection off for the block (see the note above)."""
    with _GC_LOCK:
        if not _gc_state[0]:
            _gc_state[1] = gc.isenabled()
            gc.disable()
        _gc_state[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_state[0] -= 1
            if not _gc_state[0] and _gc_state[1]:
                if not gc.get_freeze_count():
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


# --------------------------------------------------------------------------------------------
# The analyzer
# --------------------------------------------------------------------------------------------


def _quic_short_bytes(extractor: Extractor) -> frozenset[int]:
    """First bytes of QUIC short headers whose DCID length the analyzer decides per
    direction (learned, else the configured ``cid_length``): every short-header byte unless
    QUIC-LB or known CIDs let the plugin find the DCID by other means."""
    if "quic" not in extractor.protocols:
        return frozenset()
    opts = extractor.options("quic")
    if opts["quic_lb"] or opts["known_cids"]:
        return frozenset()
    grease = bool(opts["grease_quic_bit"])
    short = (b for b in range(0x80) if grease or b & 0x40)
    if opts["cid_length"] is None:
        return frozenset(short)
    # With a configured length, a byte another protocol also claims stays with the
    # Extractor's claim order, as it did before lengths were learned per direction.
    return frozenset(b for b in short if extractor.claimants(b) == ("quic",))


def _greased_bytes(extractor: Extractor) -> dict[int, tuple[str, ...]]:
    """First bytes of QUIC short headers with the fixed bit clear (0x00..0x3f) that are
    QUIC when their DCID starts with a CID learned from long headers (RFC 9287 section 3:
    only a peer that negotiated greasing sends them, so only its connection's CIDs make the
    packet QUIC -- the plugin's ``known_cids`` rule, with the CIDs the analyzer learned).
    Each maps to the protocols the Extractor asks *before* QUIC for that byte (claim order
    = configuration order, as if QUIC claimed it through ``known_cids``). Empty where the
    plugin already decides such bytes itself (``grease_quic_bit``, ``known_cids``,
    ``quic_lb``)."""
    if "quic" not in extractor.protocols:
        return {}
    opts = extractor.options("quic")
    if opts["quic_lb"] or opts["known_cids"] or opts["grease_quic_bit"]:
        return {}
    order = extractor.protocols
    before = set(order[: order.index("quic")])
    return {b: tuple(n for n in extractor.claimants(b) if n in before) for b in range(0x40)}


def _configured_length(extractor: Extractor | None) -> int | None:
    """The ``quic.cid_length`` option, where nothing is learned (see FlowAnalyzer)."""
    if extractor is None or "quic" not in extractor.protocols:
        return None
    n = extractor.options("quic")["cid_length"]
    return n if isinstance(n, int) else None


# QUIC versions whose long header flows reads itself when its DCID is empty (the plugin
# has no SID to return then, but the SCID is the sender's CID), unless the QUIC plugin
# says which versions it takes (its known_version()): v1 (RFC 9000), v2 (RFC 9369),
# Version Negotiation (0, RFC 9000 section 17.2.1), drafts 0xff0000xx.
_LONG_VERSIONS: frozenset[int] = frozenset((0x00000001, 0x6B3343CF, 0x00000000))


def _default_known_version(version: int) -> bool:
    return version in _LONG_VERSIONS or version >> 8 == 0xFF0000


def _quic_known_version(extractor: Extractor | None, host: PluginHost) -> Callable[[int], bool]:
    """Which long-header versions count as QUIC: every one with ``quic.unknown_versions``,
    else the QUIC plugin's ``known_version`` (the versions its parser claims), else v1, v2,
    VN and the drafts."""
    if extractor is None or "quic" not in extractor.protocols:
        return _default_known_version
    if extractor.options("quic").get("unknown_versions"):
        return lambda _version: True
    known = _plugin_function(extractor, host, "quic", "known_version")
    return known or _default_known_version


def _plugin_function(
    extractor: Extractor | None, host: PluginHost, protocol: str, name: str
) -> Callable[..., Any] | None:
    """The function *name* of the module that implements *protocol*'s ``sidkit_extract``,
    when *protocol* is configured and its plugin has one: what the analyzer learns from
    beyond the hooks (QUIC's ``known_version`` and ``long_header_ids``, DTLS's
    ``hello_cid_length``). A plugin without it leaves the analyzer to its default.

    The function must be defined where that ``sidkit_extract`` is: a plugin that imports the
    built-in one's functions (``from sidkit_quic import *``) and parses its own way would
    otherwise have the analyzer answer for it with a parser that is not its own."""
    if extractor is None or protocol not in extractor.protocols:
        return None
    try:
        impl = host.impl("sidkit_extract", protocol)
    except SidkitError:  # pragma: no cover - configured, so its plugin is there
        return None
    found = getattr(getattr(impl, "plugin", None), name, None)
    if not callable(found):
        return None
    home = getattr(getattr(impl, "function", None), "__module__", None)
    return found if getattr(found, "__module__", None) == home else None


# The QUIC plugin's long_header_ids: a long header's DCID and SCID as its sidkit_extract reads
# them, without a SessionId
LongIds = Callable[[bytes, Mapping[str, object]], "tuple[bytes, bytes] | None"]


# DTLS: the handshake content type (hellos, RFC 6347 section 4.1) and the first bytes of
# records with a CID (tls12_cid, RFC 9146 section 4; unified headers, RFC 9147 section 4).
_DTLS_HANDSHAKE = 22
_DTLS_CID_BYTES = (25, *range(0x30, 0x40))


def _dtls_hello_length(
    extractor: Extractor | None, host: PluginHost
) -> Callable[[bytes], tuple[str, int] | None] | None:
    """The DTLS plugin's ``hello_cid_length`` when ``dtls`` is configured and its plugin
    has one (a plugin without it: nothing is learned, the configured lengths apply)."""
    found: Callable[[bytes], tuple[str, int] | None] | None = _plugin_function(
        extractor, host, "dtls", "hello_cid_length"
    )
    return found


def quic_empty_dcid_scid(
    payload: bytes, known_version: Callable[[int], bool] = _default_known_version
) -> bytes | None:
    """The SCID of a QUIC long header whose DCID is empty (RFC 8999 section 5.1: first byte
    with 0x80 set, Version, DCID Length, DCID, SCID Length, SCID), for a version
    *known_version* accepts; else ``None``. A Version Negotiation packet must list whole
    versions after it."""
    if len(payload) < 7 or not payload[0] & 0x80 or payload[5] != 0:
        return None
    version = int.from_bytes(payload[1:5], "big")
    if not known_version(version):
        return None
    n = payload[6]
    if n > 20 or len(payload) < 7 + n:
        return None
    if version == 0 and (len(payload) - 7 - n < 4 or (len(payload) - 7 - n) % 4):
        return None
    return payload[7 : 7 + n]


def _endpoints(tk: bytes) -> tuple[bytes, bytes]:
    """(source address + port, destination address + port) of a tuple key."""
    a = (len(tk) - 4) >> 1
    return tk[:a] + tk[a + a : a + a + 2], tk[a : a + a] + tk[a + a + 2 :]


def _canonical(tk: bytes) -> bytes:
    """The tuple key of the direction whose (address, port) endpoints are in order: both
    directions of a 5-tuple give the same key."""
    src, dst = _endpoints(tk)
    if src <= dst:
        return tk
    a = (len(tk) - 4) >> 1
    return tk[a : a + a] + tk[:a] + tk[a + a + 2 :] + tk[a + a : a + a + 2]


def check_analyzer_args(protocols: object, options: object, reassembly: object) -> None:
    """The analyzer's arguments of the wrong type or with unknown keys as one sidkit error
    each, before any is used (a foreign TypeError from deep inside is no answer)."""
    if protocols is not None:
        for name in as_list(protocols, "protocols", "a list of protocol names"):
            if not isinstance(name, str):
                raise InputTypeError(
                    f"protocols must be names (str), not {type(name).__name__}",
                    code="bad-protocol",
                )
    for label, value in (("options", options), ("reassembly", reassembly)):
        if value is not None and not isinstance(value, Mapping):
            raise InputTypeError(
                f"{label} must be a mapping or None, not {type(value).__name__}",
                code="not-a-mapping",
            )
    if isinstance(reassembly, Mapping):
        known = inspect.signature(Reassembler).parameters
        for key in reassembly:
            if key not in known:
                raise InputValueError(
                    f"reassembly has no limit {show(key)} (known: {', '.join(known)})",
                    code="bad-reassembly",
                )


class FlowAnalyzer:
    """Streaming flow grouping: feed it datagrams (:meth:`add`) or whole captures
    (:meth:`read`), then ask for the :meth:`report`.

    *protocols* are protocol names of installed plugins (default:
    :func:`default_protocols`); *options* are per-protocol plugin options, as
    ``{"quic": {"cid_length": 8}}`` or ``{"quic.cid_length": 8}``. *by* is ``"sid"`` (flows
    by session ID, datagrams without one by 5-tuple) or ``"tuple"`` (everything by
    bidirectional 5-tuple, the kernel's default view).

    *fast* (the default) lets :meth:`read` skip the plugins where their exact locations
    (``exact`` :class:`~sidkit.extract.SidLocation` values) or the QUIC connection IDs
    learned from long headers already say what the plugin would return, and read classic
    pcap without building a record per frame. ``fast=False`` sends every datagram through the
    :class:`~sidkit.extract.Extractor`: the reference the fast path is tested against (the
    reports are identical).

    *max_flows* bounds the flows held at once (SID and tuple flows together; a merge frees
    one). The policy is conntrack's when its table is full and nothing can be dropped
    early: existing flows are kept whole and a datagram that would start a new flow joins
    none -- it is counted in the summary (``udp``, ``with_sid``/``without_sid``, the no-SID
    reasons) and in ``over_limit``, so every decoded datagram is in a flow or in that
    counter. Refusing rather than evicting keeps every reported flow complete and the report
    independent of when the limit was hit: an evicted flow whose ID came back would be
    reported as two. The default, 500,000 flows, holds well under a gigabyte of
    per-flow state; raise it for bigger captures on bigger machines.
    """

    def __init__(
        self,
        protocols: Sequence[str] | None = None,
        options: Mapping[str, object] | None = None,
        *,
        by: By = "sid",
        host: PluginHost | None = None,
        fast: bool = True,
        reassembly: Mapping[str, float] | None = None,
        max_flows: int = DEFAULT_MAX_FLOWS,
    ) -> None:
        check_analyzer_args(protocols, options, reassembly)
        check_uint(max_flows, 32, "max_flows")
        if max_flows < 1:
            raise InputValueError("max_flows must be at least 1", code="bad-max-flows")
        self.max_flows = max_flows
        self._live = 0  # flows alive (merged-away ones are not)
        self.over_limit = 0  # datagrams in no flow: the flow limit was reached
        if by not in ("sid", "tuple"):
            raise InputValueError(f"by must be 'sid' or 'tuple', not {show(by)}", code="bad-by")
        self.by: By = by
        self.fast = bool(fast)
        if host is not None and not isinstance(host, PluginHost):
            raise InputTypeError(
                f"host must be a PluginHost or None, not {type(host).__name__}", code="bad-host"
            )
        host = host or default_host()
        per = split_options(options or {})
        if protocols is None:
            protocols = default_protocols(options, host=host)
        elif isinstance(protocols, str) or not isinstance(protocols, Sequence):
            raise InputTypeError("protocols must be a list of names", code="bad-plugins")
        for name in per:
            if name not in protocols:
                raise InputValueError(
                    f"options given for {name!r}, which is not among the protocols "
                    f"({', '.join(protocols) or 'none'})",
                    code="unknown-option",
                )
        self.protocols: tuple[str, ...] = tuple(protocols)
        self._per = per
        self._host = host
        self._extractor = Extractor(list(protocols), per, host=host) if protocols else None
        self._learn = _quic_short_bytes(self._extractor) if self._extractor else frozenset()
        self._greased = _greased_bytes(self._extractor) if self._extractor else {}
        self._greased_quic: dict[bytes, Extractor] = {}  # learned CID -> QUIC with it known
        self._greased_ahead: dict[tuple[str, ...], Extractor] = {}  # asked before QUIC
        self._by_length: dict[int, Extractor] = {}
        # QUIC length learning: CIDs seen in long headers, their lengths, and per endpoint
        # (address + port bytes) the SCID length it chose (issued) and its peers chose (peer).
        # every CID seen in a long header -> its flow (None under by="tuple", which keeps no
        # flows by ID): one table for "is it known" and "whose is it"
        self._known: dict[bytes, FlowState | None] = {}
        self._known_lengths: tuple[int, ...] = ()
        self._issued: dict[bytes, int] = {}
        self._peer: dict[bytes, int] = {}
        self._scid_lengths: set[int] = set()
        # quic.cid_length, used where nothing is learned; _fixed is it while no long header
        # has been seen (then it applies to every short header: the fast path slices it).
        self._configured = _configured_length(self._extractor)
        self._fixed = self._configured or 0
        # Per directional tuple key, the counters of the SID flow that last started using it:
        # a datagram to an endpoint that chose zero-length CIDs has no ID, and joins the
        # flow of its path (what that endpoint itself does, RFC 9000 section 5.2).
        self._path = PathIndex()
        # flows: every state in creation order; per protocol, SID -> the state of its flow
        # (kept pointing at the surviving flow when two merge); per tuple key, a tuple
        # flow's counters; per canonical tuple key, the tuple flow.
        self._states: list[FlowState] = []
        self._cells: dict[str, dict[bytes, FlowState]] = {p: {} for p in self.protocols}
        # The fast path's cache: per protocol, SID bytes + tuple key -> that tuple's counters
        # in the SID's flow (one lookup per datagram instead of two); entries of a flow that
        # merges into another are dropped and made again on the next miss.
        self._pairs: dict[str, dict[bytes, TupleCounter]] = {p: {} for p in self.protocols}
        self._tcount: dict[bytes, TupleCounter] = {}
        self._by_tuple: dict[bytes, FlowState] = {}
        self._seq = 0  # the sequence number of the datagram being counted
        # DTLS length learning: per receiving endpoint (address + port bytes) the CID
        # length its hello asked for, and the DTLS-only Extractor per learned length.
        self._dtls_hello = _dtls_hello_length(self._extractor, host)
        self._dtls_lengths: dict[bytes, int] = {}
        self._dtls_by_length: dict[int, Extractor] = {}
        self._dtls_bytes = frozenset(
            b
            for b in _DTLS_CID_BYTES
            if self._dtls_hello is not None
            and self._extractor is not None
            and self._extractor.claimants(b) == ("dtls",)
        )
        # a QUIC plugin without long_header_ids has every long header go through the Extractor
        self._long_ids: LongIds | None = (
            _plugin_function(self._extractor, host, "quic", "long_header_ids")
            if by == "sid"
            else None
        )
        self._quic_options: Mapping[str, object] = {}
        if self._long_ids is not None and self._extractor is not None:
            self._quic_options = self._extractor.options("quic")
        self._kind, self._exact, self._base = self._fast_tables()
        self._quic = "quic" in self.protocols
        self._known_version = _quic_known_version(self._extractor, host)
        # per first byte, the protocol a datagram without an ID is counted under
        self._claimant = [
            "quic" if b in self._learn else self._first_claimant(b) for b in range(256)
        ]
        # counters
        self.frames = 0
        self.udp = 0
        self.with_sid = 0
        self.skipped: dict[str, int] = {}
        self.no_sid: dict[str, int] = {}
        self.no_sid_by: dict[str, dict[str, int]] = {}
        self.errors: list[str] = []
        self.reassembler = Reassembler(**dict(reassembly or {}))
        self.linktypes: dict[int, int] = {}
        self.capture_name = ""
        self.format = ""

    def _first_claimant(self, byte: int) -> str:
        extractor = self._extractor
        names = extractor.claimants(byte) if extractor is not None else ()
        return names[0] if names else ""

    def _fast_tables(self) -> tuple[list[int], list[tuple[ExactLocation, ...]], list[int]]:
        """Per first byte, what the fast path may do (module constants), the exact
        locations it tries, and the base kind: what a ``KIND_GREASED`` byte is when its
        DCID starts with no learned CID (for other bytes, the kind itself). Bytes whose
        datagrams feed the QUIC or WireGuard linking stay on the slow path even if a plugin
        called their location exact."""
        extractor = self._extractor
        kind = [KIND_NONE] * 256
        exact: list[tuple[ExactLocation, ...]] = [()] * 256
        if extractor is None:
            return kind, exact, kind[:]
        try:
            table = extractor.exact_table()
        except PluginError:  # a plugin whose locations are broken: ask it every time
            table = ((),) * 256
        for byte in range(256):
            if byte in self._learn:
                kind[byte] = KIND_KNOWN
                continue
            if byte == _DTLS_HANDSHAKE and self._dtls_hello is not None:
                kind[byte] = KIND_SLOW  # a hello teaches a DTLS CID length: see _dtls_learn
                continue
            if not extractor.claimants(byte):
                continue
            compiled = tuple(
                (
                    loc.offset,
                    loc.length,
                    loc.needed,
                    tuple((g.offset, g.mask, g.value) for g in loc.guards if g.offset),
                    self._cells.setdefault(loc.protocol, {}),
                    self._pairs.setdefault(loc.protocol, {}),
                    loc.protocol,
                )
                for loc in table[byte]
                if not (loc.protocol == "quic" and byte & 0x80)
                and not (loc.protocol == "wireguard" and byte == 2)
            )
            kind[byte] = KIND_EXACT if compiled else KIND_SLOW
            exact[byte] = compiled
            if (
                byte & 0x80
                and self._long_ids is not None
                and not table[byte]  # the Extractor asks the plugin, no location first
                and extractor.claimants(byte)[0] == "quic"
            ):
                kind[byte] = KIND_LONG
        base = kind[:]
        for byte in self._greased:
            kind[byte] = KIND_GREASED
        return kind, exact, base

    # -- flows --

    def _new_state(self, protocol: str | None, ts: int) -> FlowState:
        if self._live >= self.max_flows:
            raise FlowLimitReached
        self._live += 1
        st = FlowState(protocol, ts, len(self._states))
        self._states.append(st)
        return st

    def _sid_state(self, protocol: str, value: bytes, ts: int) -> FlowState:
        """The flow of a session ID, a new one if the ID is new."""
        cells = self._cells.get(protocol)
        if cells is None:
            cells = self._cells[protocol] = {}
        st = cells.get(value)
        if st is None:
            st = cells[value] = self._new_state(protocol, ts)
            st.sids.append((protocol, value))
        return st

    def _link(self, a: SidKey, b: SidKey, ts: int) -> None:
        """Both IDs name one session: merge their flows (the older flow absorbs the other)."""
        keep = self._sid_state(a[0], a[1], ts)
        cells = self._cells.setdefault(b[0], {})
        gone = cells.get(b[1])
        if gone is None:
            cells[b[1]] = keep
            keep.sids.append(b)
            return
        if gone is not keep:
            self._merge(keep, gone)

    def _merge(self, keep: FlowState, gone: FlowState) -> FlowState:
        """Merge two flows: the older absorbs the younger, whose IDs are re-pointed and
        whose cached counters are dropped. Returns the survivor."""
        if gone.order < keep.order:
            keep, gone = gone, keep
        self._path.empty.clear()  # counters move: see PathIndex
        keep.first = min(keep.first, gone.first)
        if gone.issued:
            if keep.issued is None:
                keep.issued = {}
            keep.issued.update(gone.issued)
        keep.sids.extend(gone.sids)
        known = self._known
        for protocol, value in gone.sids:
            self._cells[protocol][value] = keep
            if protocol == "quic" and value in known:
                known[value] = keep
        for tk, g in gone.tuples.items():
            k = keep.tuples.get(tk)
            g.flow = keep.order  # the path index may point at it
            if k is None:
                keep.tuples[tk] = g
            else:
                k.first = min(k.first, g.first)
                k.last = max(k.last, g.last)
                k.n += g.n
                k.size += g.size
                k.seq = max(k.seq, g.seq)
        gone.tuples = {}
        gone.sids = []
        gone.alive = False
        self._live -= 1
        for pairs, key in gone.pairs:
            pairs.pop(key, None)
        gone.pairs = []
        return keep

    def _sid_datagram(self, protocol: str, value: bytes, ts: int, tk: bytes, length: int) -> None:
        st = self._sid_state(protocol, value, ts)
        c = st.tuples.get(tk)
        if c is None:
            st.tuples[tk] = self._path[tk] = TupleCounter(ts, ts, 1, length, st.order, self._seq)
        else:
            c.last = ts
            c.n += 1
            c.size += length
            c.seq = self._seq

    def _tuple_datagram(self, ts: int, tk: bytes, length: int, key: SidKey | None) -> None:
        c = self._tcount.get(tk)
        if c is None:
            canon = _canonical(tk)
            st = self._by_tuple.get(canon)
            if st is None:
                st = self._by_tuple[canon] = self._new_state(None, ts)
            c = self._tcount[tk] = st.tuples[tk] = TupleCounter(
                ts, ts, 1, length, st.order, self._seq
            )
        else:
            c.last = ts
            c.n += 1
            c.size += length
            c.seq = self._seq
            st = self._states[c.flow]
        if key is not None and (st.sidset is None or key not in st.sidset):
            if st.sidset is None:
                st.sidset = set()
            st.sidset.add(key)
            st.sids.append(key)

    # -- DTLS CID lengths --

    def _dtls_learn(self, payload: bytes, tk: bytes) -> None:
        """Learn from a hello with the connection_id extension: records sent *to* its
        sender carry CIDs of the length it asked for (RFC 9146 section 3). From the first
        length learned on, the fast path leaves the CID-record bytes to the reference path,
        which knows the lengths per endpoint (the tables are changed in place: the record
        loop of _read holds them)."""
        assert self._dtls_hello is not None
        try:
            found = self._dtls_hello(payload)
        except SidkitError:
            # a hello cut short or fragmented across records teaches nothing; the datagram
            # itself is counted as the Extractor says, as without learning
            return
        if found is None:
            return
        src, _dst = _endpoints(tk)
        self._dtls_lengths[src] = found[1]
        for byte in self._dtls_bytes:
            if self._kind[byte] != KIND_GREASED:
                self._kind[byte] = KIND_SLOW
            self._base[byte] = KIND_SLOW
            self._exact[byte] = ()

    def _dtls_record(self, payload: bytes, tk: bytes, ft: FiveTuple | None) -> SessionId | None:
        """A CID record sent to an endpoint whose hello said its CID length, through the
        plugin with ``cid_length`` set to that length."""
        length = self._dtls_lengths[_endpoints(tk)[1]]
        extractor = self._dtls_by_length.get(length)
        if extractor is None:
            opts = {**self._per.get("dtls", {}), "cid_length": length}
            extractor = Extractor(["dtls"], {"dtls": opts}, host=self._host)
            self._dtls_by_length[length] = extractor
        return extractor.extract(payload, ft)

    # -- QUIC and WireGuard linking --

    def _quic_long(self, dcid: bytes, scid: bytes, tk: bytes, ts: int) -> None:
        """Learn from a long header: the sender chose CIDs of ``len(scid)`` bytes (zero is a
        length too), so short headers *to* it carry that many; link DCID and SCID."""
        named = dcid or scid
        if (
            named
            and self._live >= self.max_flows
            and self.by == "sid"
            and named not in self._cells.get("quic", ())
        ):
            # past the flow limit, a long header that would start a flow teaches nothing
            # either: what is learned per endpoint and CID is per-flow memory too
            raise FlowLimitReached
        src, dst = _endpoints(tk)
        n = len(scid)
        self._path.empty.clear()  # lengths and links may change: see PathIndex
        self._issued[src] = n
        self._peer[dst] = n
        self._fixed = 0
        if n:
            self._scid_lengths.add(n)
        sid = self.by == "sid"
        if sid and dcid and scid:
            self._link(("quic", dcid), ("quic", scid), ts)
        if sid and (dcid or scid):
            owner = self._sid_state("quic", dcid or scid, ts)
            if owner.issued is None:
                owner.issued = {}
            owner.issued[src] = n
        for cid in (dcid, scid):
            if cid and cid not in self._known:
                self._known[cid] = self._sid_state("quic", cid, ts) if sid else None
                if len(cid) not in self._known_lengths:
                    self._known_lengths = tuple(
                        sorted({*self._known_lengths, len(cid)}, reverse=True)
                    )

    def _quic_long_sid(self, dcid: bytes, scid: bytes, tk: bytes, ts: int, length: int) -> None:
        """A long header with a non-empty DCID under ``by="sid"``: :meth:`_quic_long` and
        then :meth:`_sid_datagram` for the DCID, in one pass with one lookup per CID (the
        handshake-heavy path: every connection starts with two of these). Past the flow
        limit it raises before changing anything, as those do."""
        # Under by="sid" every CID in _known is in the QUIC cells too (both are written
        # together), so an ID new to the cells is new to _known and needs no second lookup.
        cells = self._cells["quic"]
        known = self._known
        keep = cells.get(dcid)
        if keep is None:
            if self._live >= self.max_flows:
                # a long header that would start a flow teaches nothing either (_quic_long)
                raise FlowLimitReached
            self._live += 1
            keep = cells[dcid] = known[dcid] = FlowState("quic", ts, len(self._states))
            self._states.append(keep)
            keep.sids.append(("quic", dcid))
        elif dcid not in known:
            known[dcid] = keep
        a = (len(tk) - 4) >> 1  # _endpoints, inlined
        src = tk[:a] + tk[a + a : a + a + 2]
        n = len(scid)
        empty = self._path.empty
        if empty:
            empty.clear()  # lengths and links may change: see PathIndex
        self._issued[src] = n
        self._peer[tk[a : a + a] + tk[a + a + 2 :]] = n
        self._fixed = 0
        if n:
            self._scid_lengths.add(n)
            gone = cells.get(scid)
            if gone is None:
                cells[scid] = known[scid] = keep
                keep.sids.append(("quic", scid))
            else:
                if gone is not keep:
                    keep = self._merge(keep, gone)
                if scid not in known:
                    known[scid] = keep
        # both IDs are known now, so their lengths must be (a no-op where they were before)
        if len(dcid) not in self._known_lengths:
            self._learn_length(len(dcid))
        if n and n not in self._known_lengths:
            self._learn_length(n)
        if keep.issued is None:
            keep.issued = {src: n}
        else:
            keep.issued[src] = n
        c = keep.tuples.get(tk)
        if c is None:
            c = keep.tuples[tk] = TupleCounter(ts, ts, 1, length, keep.order, self._seq)
            # a plain dict write: PathIndex's own would drop entries of ``empty``, which was
            # cleared above
            _dict_set(self._path, tk, c)
        else:
            c.last = ts
            c.n += 1
            c.size += length
            c.seq = self._seq

    def _quic_long_fast(self, ts: int, tk: bytes, payload: bytes, length: int) -> None:
        """A datagram whose first byte is ``KIND_LONG``: QUIC claims it first and no exact
        location answers for it, so the Extractor would hand it to the QUIC plugin, whose
        ID is the DCID (or the SCID where the DCID is empty). Its ``long_header_ids`` gives
        both IDs without a SessionId, and a non-empty DCID is linked and counted as
        :meth:`_slow` does it (:meth:`_quic_long_sid`). Anything else -- no ID, an empty
        DCID, a malformed header, a plugin that fails -- goes through :meth:`_slow`, which
        counts it the long way (and turns a failure into the Extractor's error)."""
        long_ids = self._long_ids
        assert long_ids is not None
        try:
            ids = long_ids(payload, self._quic_options)
        except Exception:  # _slow asks again, and reports it as it should
            ids = None
        if ids is None or not ids[0]:
            self._slow(ts, tk, payload, length)
            return
        self.udp += 1
        self.with_sid += 1  # also when the flow limit refuses it, as _slow counts it
        try:
            self._quic_long_sid(ids[0], ids[1], tk, ts, length)
        except FlowLimitReached:
            self.over_limit += 1

    def _learn_length(self, n: int) -> None:
        """A CID of a new length was seen in a long header: short headers are tried with
        it too (the longest first)."""
        self._known_lengths = tuple(sorted({*self._known_lengths, n}, reverse=True))

    def _quic_short(self, payload: bytes, tk: bytes, ft: FiveTuple | None) -> SessionId | str:
        """A short header's DCID with the length of its direction, through the plugin
        (module note), or the reason there is none."""
        length: int | None = None
        known = self._known
        for n in self._known_lengths:
            if payload[1 : 1 + n] in known:
                length = n
                break
        if length is None:
            src, dst = _endpoints(tk)
            length = self._issued.get(dst)
            if length is None:
                length = self._side_length(tk, src)
            if length is None:
                length = self._configured
            if length is None:
                length = self._peer.get(src)
            if length is None and len(self._scid_lengths) == 1:
                length = next(iter(self._scid_lengths))
        if length is None:
            return "quic-cid-length-unknown"
        if length == 0:
            return "quic-empty-cid"
        extractor = self._by_length.get(length)
        if extractor is None:
            opts = {**self._per.get("quic", {}), "cid_length": length}
            extractor = Extractor(["quic"], {"quic": opts}, host=self._host)
            self._by_length[length] = extractor
        return extractor.extract(payload, ft) or "none"

    def _side_length(self, tk: bytes, src: bytes) -> int | None:
        """The CID length of the other side of the connection that *src* talks to on this
        tuple (the SID flow that last started using its reverse), if its long headers said
        one and only one: how a client's new address after a NAT rebinding is known."""
        c = self._path.get(_reverse(tk))
        if c is None:
            return None
        st = self._states[c.flow]
        if st.protocol != "quic":
            return None
        lengths = {n for e, n in (st.issued or {}).items() if e != src}
        return lengths.pop() if len(lengths) == 1 else None

    def _empty_cid(self, ts: int, tk: bytes, length: int, scid: bytes, short: bool = False) -> None:
        """A QUIC datagram with an empty DCID (to an endpoint that chose zero-length CIDs):
        no ID of its own, so it joins the flow of its path -- the SID flow that last started
        using this tuple or its reverse -- and a long header's SCID is linked into it."""
        if self.by == "tuple":
            self._tuple_datagram(ts, tk, length, ("quic", scid) if scid else None)
            return
        c = self._path.get(_reverse(tk)) or self._path.get(tk)
        st = self._states[c.flow] if c is not None else None
        if st is not None and st.protocol != "quic":
            st = None
        if scid:
            own = self._sid_state("quic", scid, ts)
            if st is None:
                st = own
            elif own is not st:
                self._link(st.sids[0], ("quic", scid), ts)
                st = self._cells["quic"][scid]
        if st is None:
            self._tuple_datagram(ts, tk, length, None)
            return
        c = st.tuples.get(tk)
        if c is None:
            st.tuples[tk] = self._path[tk] = TupleCounter(ts, ts, 1, length, st.order, self._seq)
        else:
            c.last = ts
            c.n += 1
            c.size += length
            c.seq = self._seq
            if short:  # the next short header on this tuple without a known CID too
                self._path.empty[tk] = c

    # -- feeding --

    def add(
        self,
        ts_ns: int,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        payload: bytes,
        length: int | None = None,
    ) -> SessionId | None:
        """Account one UDP datagram: addresses as packed bytes (4 or 16), host-order ports,
        the payload, and its length on the wire (default: ``len(payload)``). Returns the
        session ID it was grouped by, if any (always through the plugins)."""
        src, dst = as_bytes(src, "src"), as_bytes(dst, "dst")
        if len(src) not in (4, 16) or len(src) != len(dst):
            raise InputValueError("addresses must be 4 or 16 packed bytes each", code="bad-address")
        check_uint(sport, 16, "sport")
        check_uint(dport, 16, "dport")
        data = as_bytes(payload, "payload")
        self._seq += 1
        return self._slow(ts_ns, tuple_key(src, sport, dst, dport), data, length or len(data))

    @staticmethod
    def _five_tuple(tk: bytes) -> FiveTuple:
        """The FiveTuple the plugins are handed, made per slow-path datagram (a cache per
        tuple would cost memory per flow) without the public constructor's checks: a tuple
        key holds two addresses of one family and two u16 ports by construction."""
        a = (len(tk) - 4) >> 1  # split_tuple_key, inlined
        src, dst = tk[:a], tk[a : a + a]
        sport, dport = _PORTS.unpack_from(tk, a + a)
        ips = _IPS
        a_ip = ips.get(src)
        b_ip = ips.get(dst)
        if a_ip is None or b_ip is None:
            if len(ips) >= 4096:  # a bounded cache (servers' addresses repeat), not per flow
                ips.clear()
            ip = IPv4Address if len(src) == 4 else IPv6Address
            a_ip = ips[src] = ip(src)
            b_ip = ips[dst] = ip(dst)
        ft: FiveTuple = _new(FiveTuple)
        _ft_src(ft, a_ip)
        _ft_sport(ft, sport)
        _ft_dst(ft, b_ip)
        _ft_dport(ft, dport)
        _ft_protocol(ft, 17)
        _ft_ct_ctx(ft, None)
        _ft_ct_hash(ft, 0)
        return ft

    def _slow(self, ts: int, tk: bytes, payload: bytes, length: int) -> SessionId | None:
        """One datagram through the plugins: the reference path. A datagram that would
        start a flow past ``max_flows`` is counted (``udp``, with or without a SID) but
        joins no flow (``over_limit``)."""
        try:
            return self._slow_one(ts, tk, payload, length)
        except FlowLimitReached:
            self.over_limit += 1
            return None

    def _slow_one(self, ts: int, tk: bytes, payload: bytes, length: int) -> SessionId | None:
        self.udp += 1
        sid: SessionId | None = None
        reason = "none"
        empty_scid: bytes | None = None
        extractor = self._extractor
        if extractor is not None and payload:
            # only for the bytes whose plugins read it (IPsec): most leave five_tuple out
            ft = self._five_tuple(tk) if payload[0] in extractor.tuple_bytes else None
            try:
                if payload[0] in self._learn:
                    found = self._quic_short(payload, tk, ft)
                    if isinstance(found, str):
                        reason = found
                    else:
                        sid = found
                else:
                    if payload[0] & 0x80:
                        # a long-header byte: no learned length, greasing or DTLS CID
                        # record concerns it (those are all below 0x80): the Extractor's
                        sid = extractor.extract(payload, ft)
                    elif (
                        (greased := self._greased_cid(payload)) is None
                        and payload[0] in self._dtls_bytes
                        and self._dtls_lengths
                        and _endpoints(tk)[1] in self._dtls_lengths
                    ):
                        sid = self._dtls_record(payload, tk, ft)
                    else:
                        if payload[0] == _DTLS_HANDSHAKE and self._dtls_hello is not None:
                            self._dtls_learn(payload, tk)
                        sid = self._extract(payload, ft, greased)
                    if sid is not None and sid.protocol == "quic" and payload[0] & 0x80:
                        # The plugin parsed the long header (RFC 8999 section 5.1): its ID
                        # is the DCID, or the SCID where the DCID is empty. Read the SCID
                        # here rather than through the ID's details, which it makes lazily.
                        dcil = payload[5]
                        scid = payload[7 + dcil : 7 + dcil + payload[6 + dcil]]
                        if not dcil:
                            # an empty DCID: the plugin's ID is the sender's SCID, and the
                            # datagram joins the flow of its path (_empty_cid)
                            self.with_sid += 1
                            self._quic_long(b"", sid.value, tk, ts)
                            self._empty_cid(ts, tk, length, sid.value)
                            return sid
                        if self.by == "sid" and sid.value:
                            try:
                                self._quic_long_sid(sid.value, scid, tk, ts, length)
                            finally:  # counted, also when the flow limit refuses it
                                self.with_sid += 1
                            return sid
                        self._linking(sid, self._quic_long, sid.value, scid, tk, ts)
                    elif sid is None and self._quic and payload[0] & 0x80:
                        empty_scid = quic_empty_dcid_scid(payload, self._known_version)
                        if empty_scid is not None:
                            reason = "quic-empty-cid"
                            try:
                                self._quic_long(b"", empty_scid, tk, ts)
                            except FlowLimitReached:
                                self.no_sid[reason] = self.no_sid.get(reason, 0) + 1
                                self._count_reason(reason, payload[0])
                                raise
                    elif (
                        sid is not None
                        and sid.protocol == "wireguard"
                        and payload[0] == 2
                        and self.by == "sid"
                    ):
                        # handshake response: sender index at 4, receiver at 8 (whitepaper
                        # section 5.4.3); the plugin's SID is the receiver's.
                        self._linking(
                            sid, self._link, sid_key(sid), ("wireguard", payload[4:8]), ts
                        )
            except SidkitError as exc:
                reason = f"malformed:{getattr(exc, 'protocol', '') or 'plugin'}"
                sid = None
        if sid is None or not sid.value:
            self.no_sid[reason] = self.no_sid.get(reason, 0) + 1
            self._count_reason(reason, payload[0] if payload else -1)
            if reason == "quic-empty-cid":
                self._empty_cid(ts, tk, length, empty_scid or b"", empty_scid is None)
            else:
                self._tuple_datagram(ts, tk, length, None)
            return None
        self.with_sid += 1
        if self.by == "tuple":
            self._tuple_datagram(ts, tk, length, sid_key(sid))
            return None
        self._sid_datagram(sid.protocol, sid.value, ts, tk, length)
        return sid

    def _linking(self, sid: SessionId, link: Callable[..., None], *args: object) -> None:
        r"""*link(\*args)* for a datagram whose ID *sid* is found; past the flow limit, the
        datagram is counted as one with an ID before it is refused."""
        try:
            link(*args)
        except FlowLimitReached:
            if sid.value:
                self.with_sid += 1
            raise

    def _greased_cid(self, payload: bytes) -> bytes | None:
        """The learned CID (the longest) that the DCID of a short header with the fixed
        bit clear starts with, if the analyzer decides such headers (:func:`_greased_bytes`)."""
        if payload[0] not in self._greased or not self._known:
            return None
        known = self._known
        size = len(payload)
        for n in self._known_lengths:
            if size > n and payload[1 : 1 + n] in known:
                return payload[1 : 1 + n]
        return None

    def _extract(
        self, payload: bytes, ft: FiveTuple | None, greased: bytes | None
    ) -> SessionId | None:
        """The Extractor's answer, with a greased short header whose DCID starts with the
        learned CID *greased* claimed by QUIC in QUIC's configured place: the protocols
        configured before QUIC that claim the byte are asked first (their ID, or their
        malformed-packet error, wins), then QUIC with *greased* as its one known CID."""
        extractor = self._extractor
        assert extractor is not None
        if greased is None:
            return extractor.extract(payload, ft)
        ahead = self._greased[payload[0]]
        if ahead:
            first = self._greased_ahead.get(ahead)
            if first is None:
                per = {p: self._per.get(p, {}) for p in ahead}
                first = self._greased_ahead[ahead] = Extractor(list(ahead), per, host=self._host)
            sid = first.extract(payload, ft)
            if sid is not None:
                return sid
        quic = self._greased_quic.get(greased)
        if quic is None:
            if len(self._greased_quic) >= 1024:
                self._greased_quic.clear()
            opts = {**self._per.get("quic", {}), "known_cids": frozenset((greased,))}
            quic = Extractor(["quic"], {"quic": opts}, host=self._host)
            self._greased_quic[greased] = quic
        return quic.extract(payload, ft)

    def _count_reason(self, reason: str, first: int) -> None:
        """Count a datagram without an ID under its protocol (the first configured protocol
        that claims its first byte, ``-`` for none) and a per-protocol reason."""
        if reason.startswith("malformed:"):
            protocol, why = reason[10:], "malformed"
            if protocol == "plugin" and first >= 0:
                protocol = self._claimant[first] or "-"
        elif reason.startswith("quic-"):
            protocol, why = "quic", reason[5:]
        else:
            protocol = self._claimant[first] if first >= 0 else ""
            why = "no-id" if protocol else "unclaimed"
            protocol = protocol or "-"
        counts = self.no_sid_by.setdefault(protocol, {})
        counts[why] = counts.get(why, 0) + 1

    def _fast(self, ts: int, tk: bytes, payload: bytes, length: int) -> None:
        """One datagram, skipping the plugins where the tables allow (see :meth:`read`)."""
        if not payload:
            self._slow(ts, tk, payload, length)
            return
        first = payload[0]
        k = self._kind[first]
        if k == KIND_GREASED:
            k = KIND_SLOW if self._greased_cid(payload) is not None else self._base[first]
        protocol = ""
        value = b""
        if k == KIND_KNOWN:
            size = len(payload)
            for n in self._known_lengths:
                if size <= n:
                    break  # the slice would be short: the plugin decides
                if payload[1 : 1 + n] in self._known:
                    protocol, value = "quic", payload[1 : 1 + n]
                    break
            fixed = self._fixed
            if not protocol and fixed and size > fixed:
                protocol, value = "quic", payload[1 : 1 + fixed]
        elif k == KIND_EXACT:
            size = len(payload)
            for off, n, needed, guards, _cells, _pairs, p in self._exact[first]:
                if size >= needed and all(payload[g] & m == v for g, m, v in guards):
                    protocol, value = p, payload[off : off + n]
                    break
        elif k == KIND_LONG:
            self._quic_long_fast(ts, tk, payload, length)
            return
        elif k == KIND_NONE:
            self.udp += 1
            self.no_sid["none"] = self.no_sid.get("none", 0) + 1
            self._count_reason("none", first)
            try:
                self._tuple_datagram(ts, tk, length, None)
            except FlowLimitReached:
                self.over_limit += 1
            return
        if not protocol:
            self._slow(ts, tk, payload, length)
            return
        self.udp += 1
        self.with_sid += 1
        if self.by == "tuple":
            try:
                self._tuple_datagram(ts, tk, length, (protocol, value))
            except FlowLimitReached:
                self.over_limit += 1
            return
        pairs = self._pairs[protocol]
        key = value + tk
        c = pairs.get(key)
        if c is None:
            try:
                st = self._sid_state(protocol, value, ts)
            except FlowLimitReached:
                self.over_limit += 1
                return
            c = pair_counter(st, pairs, key, tk, ts, self._path)
        c.last = ts
        c.n += 1
        c.size += length
        c.seq = self._seq

    def read(
        self, capture: Capture, progress: Progress | None = None, total: int | None = None
    ) -> None:
        """Account every record of *capture*; *progress* is called with (bytes read, total)
        as the reading goes (after each 1 MiB read of a classic pcap, every 65536 records of
        a pcapng) and once at the end."""
        self.capture_name = capture.name
        self.format = capture.format
        with gc_paused():
            if self.fast and capture.layout is not None:
                read_pcap(self, capture, capture.layout, progress, total)
            else:
                read_records(self, capture, progress, total)
        self.errors.extend(capture.errors)
        if progress is not None:
            progress(capture.bytes_read, total)

    # -- results --

    def report(self) -> FlowReport:
        """The flows so far, ordered by first seen, and the summary."""
        with gc_paused():
            return self._report()

    def _report(self) -> FlowReport:
        # One pass over the flows in creation order; the tuples of a flow and then the flows
        # are ordered by sorting plain tuples whose leading items are the sort keys (compared
        # in C, no key function per item) -- a unique index before the object keeps the
        # order of equal keys, as a stable sort by key does, and never compares the object.
        rows: list[tuple[int, str, str, int, Flow]] = []
        names: dict[bytes, str] = {}  # packed address -> text, made once per address
        ports = _PORTS.unpack_from
        stats = trusted_stats
        sid_flows = 0
        for st in self._states:
            tuples = st.tuples
            if not tuples or not st.alive:
                continue
            datagrams = nbytes = 0
            seq = last = -2  # the latest datagram's (highest sequence number): see FlowState
            parts: list[tuple[int, str, int, str, int, int, TupleCounter]] = []
            for k, v in tuples.items():
                a = (len(k) - 4) >> 1  # split_tuple_key, inlined: one call per tuple
                src, dst = k[:a], k[a : a + a]
                sport, dport = ports(k, a + a)
                datagrams += v.n
                nbytes += v.size
                if v.seq > seq:
                    seq, last = v.seq, v.last
                parts.append(
                    (
                        v.first,
                        names.get(src) or names.setdefault(src, addr(src)),
                        sport,
                        names.get(dst) or names.setdefault(dst, addr(dst)),
                        dport,
                        len(parts),
                        v,
                    )
                )
            if len(parts) > 1:
                parts.sort()  # by first seen, then src, sport, dst, dport (TupleStats' fields)
            made = tuple(
                [stats(s, sp, d, dp, f, v.last, v.n, v.size) for f, s, sp, d, dp, _i, v in parts]
            )
            sids = tuple(map(_hex, map(_second, st.sids)))  # each ID's bytes as hex
            if st.protocol is not None:
                sid_flows += 1
                flow = trusted_flow(
                    "sid", st.protocol, sids[0], sids, st.first, last, datagrams, nbytes, made
                )
                rows.append((st.first, "sid", sids[0], len(rows), flow))
            else:
                protocols = {p for p, _v in st.sids}
                protocol = next(iter(protocols)) if len(protocols) == 1 else None
                flow = trusted_flow(
                    "tuple", protocol, None, sids, st.first, last, datagrams, nbytes, made
                )
                rows.append((st.first, "tuple", "", len(rows), flow))
        rows.sort()  # by first seen, kind, sid (the order of FlowReport.flows)
        flows = [row[4] for row in rows]
        summary = Summary(
            capture=self.capture_name,
            format=self.format,
            linktypes={LINKTYPES.get(k, f"linktype {k}"): v for k, v in self.linktypes.items()},
            protocols=self.protocols,
            by=self.by,
            frames=self.frames,
            udp=self.udp,
            with_sid=self.with_sid,
            without_sid=self.udp - self.with_sid,
            skipped=dict(sorted(self.skipped.items())),
            no_sid=dict(sorted(self.no_sid.items())),
            errors=tuple(self.errors),
            sid_flows=sid_flows,
            tuple_flows=len(flows) - sid_flows,
            max_flows=self.max_flows,
            over_limit=self.over_limit,
            reassembly=self.reassembler.summary(),
            no_sid_by_protocol={
                p: dict(sorted(r.items())) for p, r in sorted(self.no_sid_by.items())
            },
        )
        return FlowReport(tuple(flows), summary)


def sid_key(sid: SessionId) -> SidKey:
    """The (protocol, bytes) pair a SessionId is equal by."""
    if not isinstance(sid, SessionId):
        raise InputTypeError(f"sid must be a SessionId, not {type(sid).__name__}", code="not-sid")
    return (sid.protocol, sid.value)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def analyze(
    source: str | Path | BinaryIO,
    protocols: Sequence[str] | None = None,
    options: Mapping[str, object] | None = None,
    *,
    by: By = "sid",
    progress: Progress | None = None,
    host: PluginHost | None = None,
    fast: bool = True,
    reassembly: Mapping[str, float] | None = None,
    max_flows: int = DEFAULT_MAX_FLOWS,
) -> FlowReport:
    """Read a pcap or pcapng capture and group its UDP datagrams into flows.

    *source* is a path, ``"-"`` for standard input, or a binary file object. The capture is
    streamed: memory grows with the number of flows and tuples, not with its size. A capture
    that ends mid-record or turns corrupt gives the flows read so far, with the problem in
    ``summary.errors``; if not even one record could be read, the problem is raised as a
    :class:`CaptureError`. A file that is no capture raises :class:`NotACaptureError`; a
    capture whose frames are all of a link type sidkit does not decode,
    :class:`UnsupportedLinkTypeError`. *fast* is :class:`FlowAnalyzer`'s: ``False`` sends
    every datagram through the plugins (the same report, slower). *reassembly* sets the
    limits of IP fragment reassembly (:class:`~sidkit.flows.Reassembler`'s keyword arguments:
    ``max_pending``, ``max_bytes``, ``timeout_v4``, ``timeout_v6``, ``max_dist``).
    *max_flows* is :class:`FlowAnalyzer`'s flow limit.

    >>> report = analyze("tests/data/quic-v1-migration.pcap")  # doctest: +SKIP
    >>> [(f.protocol, f.paths) for f in report.flows]  # doctest: +SKIP
    """
    analyzer = FlowAnalyzer(
        protocols, options, by=by, host=host, fast=fast, reassembly=reassembly, max_flows=max_flows
    )
    with gc_paused():  # one pause for reading and report (they pause too: see gc_paused)
        if isinstance(source, str | Path):
            path = os.fspath(source)
            if path == "-":
                read_into(analyzer, sys.stdin.buffer, "<stdin>", None, progress)
            else:
                with open_capture(path) as fh:
                    try:
                        total: int | None = os.fstat(fh.fileno()).st_size
                    except OSError:  # pragma: no cover
                        total = None
                    read_into(analyzer, fh, path, total, progress)
        elif hasattr(source, "read"):
            read_into(analyzer, source, getattr(source, "name", "<stream>"), None, progress)
        else:
            raise InputTypeError(
                f"source must be a path or a binary file, not {type(source).__name__}",
                code="bad-source",
            )
        report = analyzer.report()
        # freed here, by reference counting (it holds no cycle), so that the collection
        # after the pause walks the report and not the analyzer's tables as well
        del analyzer
    return report
