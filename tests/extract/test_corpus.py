"""The real-capture corpus: every datagram's session ID against tshark's fields.

The captures (conformance/captures/manifest.json, fetched by conformance/captures/fetch.py)
were made by real implementations and published by others. For every UDP datagram of every
capture, sidkit's :class:`~sidkit.extract.Extractor` -- once with the protocol the manifest
names, once with the default protocols -- must find the ID tshark shows (quic.dcid, wg.sender
or wg.receiver, dtls.record.connection_id, gtp.teid, esp.spi, isakmp.ispi, openvpn.sessionid
or .peerid, rtp.ssrc, rtcp.senderssrc), and nothing where tshark shows no protocol of sidkit's.
Per capture, ``sidkit.flows.analyze`` must not split a QUIC connection tshark tracks as one
(quic.connection.number) over several SID flows.

Each disagreement falls into a category (capture, check, what tshark saw, what sidkit said)
and every category needs a verdict in conformance/captures/verdicts.json, the same file
docs/corpus.rst shows. A verdict that tshark is right and sidkit wrong (``"who": "sidkit"``)
names the fix, and its test is a strict xfail: it passes -- and so fails the run -- as soon as
the fix lands, telling whoever landed it to delete the verdict. Other verdicts must keep
matching the observed count exactly, so neither side can drift unnoticed.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conftest
import dpkt
import pytest
from fixtures.tshark import fields, tshark, uint_hex

from sidkit.extract import Extractor, MalformedPacketError
from sidkit.flows import analyze, default_protocols
from sidkit.keys import FiveTuple

ROOT = Path(__file__).parents[2]
CAPTURES = ROOT / "conformance" / "captures"
MANIFEST: dict[str, Any] = json.loads((CAPTURES / "manifest.json").read_text())
VERDICTS: list[dict[str, Any]] = json.loads((CAPTURES / "verdicts.json").read_text())["verdicts"]
GENERATED: list[dict[str, Any]] = MANIFEST.get("generated", [])
BY_NAME = {c["name"]: c for c in (*MANIFEST["captures"], *GENERATED)}

TSHARK_FIELDS = [
    "frame.protocols",
    "quic.dcid",
    "quic.scid",
    "quic.header_form",
    "quic.connection.number",
    "wg.type",
    "wg.sender",
    "wg.receiver",
    "dtls.record.connection_id",
    "gtp.teid",
    "esp.spi",
    "isakmp.ispi",
    "openvpn.opcode",
    "openvpn.sessionid",
    "openvpn.peerid",
    "rtp.ssrc",
    "rtcp.senderssrc",
]
# tshark would reassemble IP fragments and show the fields on the last one; sidkit (like the
# kernel's socket lookup, after reassembly) reads the UDP header of the first. Per-frame
# alignment needs tshark to leave fragments alone.
BASE_PREFS = {"ip.defragment": "FALSE", "ipv6.defragment": "FALSE"}

Category = tuple[str, str, str]  # (check, tshark, sidkit)


def _key(verdict: dict[str, Any]) -> tuple[str, str, str, str]:
    return (verdict["capture"], verdict["check"], verdict["tshark"], verdict["sidkit"])


def _capture_path(capture: dict[str, Any]) -> Path:
    path = CAPTURES / "_work" / str(capture["name"])
    if capture.get("generator"):
        stamp = path.with_name(path.name + ".generated")
        if not path.is_file() or not stamp.is_file():
            conftest.oracle_unavailable(
                f"generated capture {capture['name']} is missing (as root: "
                ".venv/bin/python conformance/captures/generate.py)"
            )
        return path
    stamp = path.with_name(path.name + ".sha256")
    if not path.is_file() or not stamp.is_file() or stamp.read_text().strip() != capture["sha256"]:
        conftest.oracle_unavailable(
            f"corpus capture {capture['name']} is missing (python3 conformance/captures/fetch.py)"
        )
    return path


Datagram = tuple[bytes, int, bytes, int, bytes]  # src, sport, dst, dport, payload


def _udp_of(linktype: int, frame: bytes) -> Datagram | None:
    """The UDP datagram of one frame, decoded by dpkt (not by sidkit, whose reader is under
    test elsewhere), or None: not UDP, a non-first IP fragment, or undecodable."""
    try:
        if linktype == dpkt.pcap.DLT_EN10MB:
            ip = dpkt.ethernet.Ethernet(frame).data
        elif linktype == dpkt.pcap.DLT_LINUX_SLL:
            ip = dpkt.sll.SLL(frame).data
        elif linktype in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
            ip = dpkt.loopback.Loopback(frame).data
        elif linktype in (dpkt.pcap.DLT_RAW, 12, 14, 101, 228, 229):
            ip = dpkt.ip.IP(frame) if frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)
        else:
            return None
        if isinstance(ip, dpkt.ip.IP):
            if ip.offset:
                return None
        elif isinstance(ip, dpkt.ip6.IP6):
            frag = ip.extension_hdrs.get(dpkt.ip.IP_PROTO_FRAGMENT)
            if frag is not None and frag.frag_off:
                return None
        else:
            return None
        udp = ip.data
        if not isinstance(udp, dpkt.udp.UDP):
            return None
        return bytes(ip.src), udp.sport, bytes(ip.dst), udp.dport, bytes(udp.data)
    except (dpkt.UnpackError, IndexError, ValueError):
        return None


def _frames(path: Path) -> Iterator[Datagram | None]:
    """Each record's UDP datagram (or None), in capture order."""
    with path.open("rb") as fh:
        reader = dpkt.pcap.UniversalReader(fh)
        linktype = reader.datalink()
        for _ts, frame in reader:
            yield _udp_of(linktype, bytes(frame))


def _expected(row: dict[str, list[str]]) -> tuple[str, str | None]:
    """What tshark saw: (its class, the session ID sidkit should find as hex, or None)."""
    protos = row["frame.protocols"][0].split(":") if row["frame.protocols"] else []
    above = protos[protos.index("udp") + 1 :] if "udp" in protos else []
    if "udpencap" in above:
        above.remove("udpencap")
    if not above:
        return "udp-empty", None
    top = above[0]
    if top == "quic":
        dcid = row["quic.dcid"][0] if row["quic.dcid"] else ""
        if dcid:
            return "quic", dcid
        # a long header with an empty DCID names the sender's SCID (the plugin's ID there)
        long = row["quic.header_form"][:1] == ["1"]
        scid = row["quic.scid"][0] if long and row["quic.scid"] else ""
        return ("quic", scid) if scid else ("quic(zero-length DCID)", None)
    if top == "wg":
        kind = row["wg.type"][0]
        field = row["wg.sender"] if kind == "1" else row["wg.receiver"]
        return "wireguard", uint_hex(field[0]).to_bytes(4, "little").hex()
    if top == "dtls":
        cid = row["dtls.record.connection_id"]
        return ("dtls", cid[0]) if cid else ("dtls(no CID)", None)
    if top == "gtp":
        if "gtpv2" in above:
            return "gtpv2-c", None
        teid = uint_hex(row["gtp.teid"][0]) if row["gtp.teid"] else 0
        return ("gtpu", teid.to_bytes(4, "big").hex()) if teid else ("gtpu(TEID 0)", None)
    if top == "esp":
        return "ipsec", uint_hex(row["esp.spi"][0]).to_bytes(4, "big").hex()
    if top == "isakmp":
        return "ipsec", row["isakmp.ispi"][0]
    if top == "openvpn":
        if row["openvpn.peerid"]:
            return "openvpn", uint_hex(row["openvpn.peerid"][0]).to_bytes(3, "big").hex()
        if row["openvpn.sessionid"]:
            return "openvpn", uint_hex(row["openvpn.sessionid"][0]).to_bytes(8, "big").hex()
        return f"openvpn(opcode {row['openvpn.opcode'][0]}, no ID)", None
    ssrc = {"rtp": "rtp.ssrc", "rtcp": "rtcp.senderssrc"}.get(top)
    if ssrc is not None:
        if not row[ssrc]:
            return f"{top}(no SSRC)", None
        return top, uint_hex(row[ssrc][0]).to_bytes(4, "big").hex()
    return top, None


_SIDKIT_PROTOCOL = {"rtcp": "rtp"}


def _said(extractor: Extractor, payload: bytes, ft: FiveTuple) -> tuple[str, str | None]:
    try:
        sid = extractor.extract(payload, ft)
    except MalformedPacketError as exc:
        return f"error:{exc.code}", None
    if sid is None:
        return "none", None
    return sid.protocol, sid.value.hex()


def _compare(
    tclass: str,
    want: str | None,
    said: tuple[str, str | None],
    protocols: set[str],
    absent: frozenset[str],
) -> str | None:
    """The sidkit side of a disagreement's category, or None when both agree. A protocol
    the capture's provenance rules out (manifest ``absent``) is a disagreement even where
    tshark's heuristics claim it too."""
    proto = _SIDKIT_PROTOCOL.get(tclass, tclass)
    sclass, value = said
    if sclass in absent:
        return f"{sclass} (absent from this capture)"
    if want is not None and proto in protocols:
        if sclass == proto and value == want:
            return None
        return f"{sclass} (other ID)" if sclass == proto else sclass
    # tshark shows no ID sidkit is configured for: sidkit must claim nothing either.
    return None if sclass == "none" else sclass


@functools.cache
def observe(name: str) -> tuple[int, Counter[tuple[str, str, str]]]:
    """(UDP datagrams compared, Counter of disagreement categories) for one capture."""
    capture = BY_NAME[name]
    tshark()
    path = _capture_path(capture)
    rows = fields(
        path,
        TSHARK_FIELDS,
        decode_as=capture["decode_as"],
        prefs={**BASE_PREFS, **capture["prefs"]},
    )
    datagrams = list(_frames(path))
    assert len(rows) == len(datagrams), (name, len(rows), len(datagrams))
    udp_rows = sum(
        1
        for row in rows
        if "udp" in row["frame.protocols"][0].split(":")
        and ":icmp" not in row["frame.protocols"][0]
    )

    # The stateless Extractor cannot know a short header's CID length; give it the CIDs the
    # long headers announced (what flows learns), as known_cids.
    learned = {
        bytes.fromhex(c)
        for row in rows
        if "1" in row["quic.header_form"]
        for c in row["quic.dcid"] + row["quic.scid"]
    }
    named = capture["protocol"]
    quic_opts: dict[str, object] = {"known_cids": learned} if learned else {}
    opts = quic_opts if named == "quic" else capture["options"]
    defaults = list(default_protocols())
    extractors = {"default": Extractor(defaults, {"quic": quic_opts} if "quic" in defaults else {})}
    if named:
        extractors["named"] = Extractor([named], opts)

    absent = frozenset(capture["absent"])
    seen: Counter[Category] = Counter()
    compared = 0
    for row, datagram in zip(rows, datagrams, strict=True):
        protos = row["frame.protocols"][0] if row["frame.protocols"] else ""
        if datagram is None or ":icmp" in protos:
            continue  # not a UDP datagram of its own (fragments, ICMP errors quoting one)
        src, sport, dst, dport, payload = datagram
        ft = FiveTuple(src, sport, dst, dport)
        compared += 1
        tclass, want = _expected(row)
        for check, extractor in extractors.items():
            said = _said(extractor, payload, ft)
            verdict = _compare(tclass, want, said, set(extractor.protocols), absent)
            if verdict is not None:
                seen[(check, tclass, verdict)] += 1

    assert compared == udp_rows, f"{name}: dpkt found {compared} UDP datagrams, tshark {udp_rows}"

    # flows: a QUIC connection tshark tracks as one must not become several SID flows.
    conn_cids: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for number in row["quic.connection.number"][:1]:
            conn_cids[number].update(c for c in row["quic.dcid"] + row["quic.scid"] if c)
    if conn_cids:
        report = analyze(path)
        flow_of = {
            sid: i
            for i, f in enumerate(report.flows)
            if f.kind == "sid" and f.protocol == "quic"
            for sid in f.sids
        }
        for cids in conn_cids.values():
            flows = {flow_of[c] for c in cids if c in flow_of}
            if len(flows) > 1:
                seen[("flows", "one QUIC connection", "several SID flows")] += 1
            elif not flows:
                seen[("flows", "one QUIC connection", "no SID flow")] += 1
    # flows, DTLS: every datagram that starts with a CID record (tshark's CID) is in the one
    # SID flow of that CID -- across an address change too.
    if named == "dtls":
        for category, count in _dtls_flow_check(path, capture, rows, datagrams).items():
            seen[category] += count
    # fragments: every GTP-U datagram tshark reassembles keeps its TEID in flows, which
    # reassembles as the kernel does before the socket lookup.
    if named == "gtpu":
        for category, count in _fragment_check(path, capture).items():
            seen[category] += count
    return compared, seen


def _dtls_flow_check(
    path: Path,
    capture: dict[str, Any],
    rows: list[dict[str, list[str]]],
    datagrams: list[Datagram | None],
) -> Counter[Category]:
    """Per CID tshark shows on a datagram whose first record carries it (RFC 9146 tls12_cid,
    content type 25; RFC 9147 unified header with C set), the datagrams of that CID's SID
    flow in ``sidkit.flows.analyze`` (``dtls`` named, the capture's CID lengths): one flow,
    as many datagrams."""
    want: Counter[str] = Counter()
    for row, datagram in zip(rows, datagrams, strict=True):
        if datagram is None or not row["dtls.record.connection_id"]:
            continue
        first = datagram[4][:1]
        if first == b"\x19" or (first and first[0] & 0xF0 == 0x30):
            want[row["dtls.record.connection_id"][0]] += 1
    options = {f"dtls.{key}": value for key, value in capture["options"].items()}
    report = analyze(path, ["dtls"], options)
    flows: dict[str, list[int]] = defaultdict(list)
    for flow in report.flows:
        if flow.kind == "sid" and flow.protocol == "dtls":
            for sid in flow.sids:
                flows[sid].append(flow.datagrams)
    seen: Counter[Category] = Counter()
    for cid, count in want.items():
        got = flows.get(cid, [])
        if len(got) > 1:
            seen[("flows", "one DTLS CID", "several SID flows")] += 1
        elif not got:
            seen[("flows", "one DTLS CID", "no SID flow")] += 1
        elif got[0] != count:
            lost = "fewer datagrams" if got[0] < count else "more datagrams"
            seen[("flows", "one DTLS CID", lost)] += 1
    return seen


def _fragment_check(path: Path, capture: dict[str, Any]) -> Counter[Category]:
    """Per TEID, the G-PDUs tshark counts with IP reassembly on against the datagrams of
    that TEID's SID flow in ``sidkit.flows.analyze`` (``gtpu`` named)."""
    rows = fields(
        path,
        ["frame.protocols", "gtp.teid", "gtp.message"],
        decode_as=capture["decode_as"],
        prefs={**capture["prefs"], "ip.defragment": "TRUE", "ipv6.defragment": "TRUE"},
    )
    want: Counter[str] = Counter()
    for row in rows:
        protos = row["frame.protocols"][0].split(":") if row["frame.protocols"] else []
        if "gtp" not in protos or "gtpv2" in protos or ":icmp" in row["frame.protocols"][0]:
            continue
        value = uint_hex(row["gtp.teid"][0]) if row["gtp.teid"] else 0
        if value:
            want[value.to_bytes(4, "big").hex()] += 1
    report = analyze(path, ["gtpu"], capture["options"] or None)
    got: Counter[str] = Counter()
    for flow in report.flows:
        if flow.kind == "sid" and flow.protocol == "gtpu":
            for sid in flow.sids:
                got[sid] += flow.datagrams
    seen: Counter[Category] = Counter()
    for teid in want.keys() | got.keys():
        if want[teid] == got[teid]:
            continue
        lost = "fewer datagrams" if got[teid] < want[teid] else "more datagrams"
        seen[("fragments", "GTP-U datagrams of one TEID", lost)] += 1
    return seen


def _verdicts_for(name: str) -> dict[Category, dict[str, Any]]:
    return {_key(v)[1:]: v for v in VERDICTS if v["capture"] == name}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_capture_agrees_with_tshark_or_has_a_verdict(name: str) -> None:
    compared, seen = observe(name)
    assert compared > 0, f"{name}: no UDP datagram compared"
    verdicts = _verdicts_for(name)
    problems: list[str] = []
    for category, count in sorted(seen.items()):
        v = verdicts.get(category)
        if v is None:
            problems.append(f"no verdict: {category} x{count}")
        elif v["who"] != "sidkit" and v["count"] != count:
            problems.append(f"count changed: {category} x{count} (verdict says {v['count']})")
    for category, v in verdicts.items():
        if v["who"] != "sidkit" and category not in seen:
            problems.append(f"stale verdict (no longer observed): {category}")
    assert not problems, f"{name} ({compared} datagrams):\n" + "\n".join(problems)


def _known_wrong() -> list[Any]:
    params = []
    for v in VERDICTS:
        if v["who"] != "sidkit":
            continue
        mark = pytest.mark.xfail(strict=True, reason=f"sidkit wrong, fix pending: {v['fix']}")
        ident = f"{v['capture']}|{v['check']}|{v['tshark']}|{v['sidkit']}"
        params.append(pytest.param(v, marks=mark, id=ident))
    return params


@pytest.mark.oracle
@pytest.mark.parametrize("verdict", _known_wrong())
def test_known_sidkit_disagreement_is_fixed(verdict: dict[str, Any]) -> None:
    """Strict xfail while the fix is pending: when it lands, this passes and fails the run
    until the verdict row is deleted from conformance/captures/verdicts.json."""
    _compared, seen = observe(verdict["capture"])
    assert _key(verdict)[1:] not in seen


def test_manifest_and_verdicts_are_well_formed() -> None:
    for c in MANIFEST["captures"]:
        assert c["source"] in MANIFEST["sources"]
        assert len(c["sha256"]) == 64 and c["covers"]
    for c in GENERATED:
        assert c["generator"] == "generate.py" and c["covers"]
        assert (CAPTURES / c["generator"]).is_file()
        assert c["name"].startswith("gen/") and c["name"] not in {
            x["name"] for x in MANIFEST["captures"]
        }
    for s in MANIFEST["sources"].values():
        assert s["licence"] and len(s["sha256"]) == 64
    keys = [_key(v) for v in VERDICTS]
    assert len(keys) == len(set(keys)), "a category has two verdicts"
    for v in VERDICTS:
        assert v["capture"] in BY_NAME
        assert v["check"] in ("named", "default", "flows", "fragments")
        assert v["who"] in ("sidkit", "tshark", "neither")
        assert v["why"]
        assert (v["who"] == "sidkit") == bool(v.get("fix")), v
