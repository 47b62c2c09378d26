# Strategy: datagrams for the bench from a capture. The capture is read by sidkit.flows'
# reader (pcap and pcapng, every link type it decodes, IP fragments put back together); each
# UDP datagram keeps its payload and source port, and its source address is mapped onto one
# of the lab's two client addresses (the first address seen goes to the first), so datagrams
# that changed address in the capture still do on the bench. A destination port filter picks
# the service; a limit keeps runs bounded.
"""Datagrams from a capture file, for the bench (private)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sidkit.bpf import netns
from sidkit.flows import CaptureError, Reassembler
from sidkit.flows._capture import Capture
from sidkit.flows._decode import Fragment, decode_frame
from sidkit.flows._read import reassemble
from sidkit.testbench._bench import MAX_DATAGRAMS, MAX_PAYLOAD, Family, Probe
from sidkit.testbench._program import TestbenchError

__all__ = ["capture_probes"]

DEFAULT_LIMIT: Final = 10_000


def capture_probes(
    path: str | Path,
    *,
    dport: int | None = None,
    limit: int = DEFAULT_LIMIT,
    family: Family = "ipv4",
) -> list[Probe]:
    """The UDP datagrams of a capture (to *dport* only, when given), at most *limit*, with
    their source addresses mapped onto the lab's two client addresses of *family*."""
    if not 1 <= limit <= MAX_DATAGRAMS:
        raise TestbenchError(f"limit must be 1..{MAX_DATAGRAMS}, got {limit}")
    sources: dict[bytes, str] = {}
    clients = netns.CLIENT_V6 if family == "ipv6" else netns.CLIENT_V4
    out: list[Probe] = []
    reassembler = Reassembler()
    try:
        with open(path, "rb") as fh:
            capture = Capture(fh, name=str(path))
            for ts, linktype, frame, _wirelen in capture:
                result = decode_frame(linktype, frame)
                if isinstance(result, Fragment):
                    whole = reassemble(reassembler, ts, result)
                    if whole is None:
                        continue
                    result = whole
                if isinstance(result, str):
                    continue
                src, sport, _dst, port, payload, _length = result
                if dport is not None and port != dport:
                    continue
                if len(payload) > MAX_PAYLOAD:
                    continue
                addr = sources.setdefault(src, clients[len(sources) % 2])
                out.append(Probe(payload, addr, sport or 1))
                if len(out) >= limit:
                    break
    except OSError as exc:
        raise TestbenchError(f"{path}: {exc.strerror or exc}") from None
    except CaptureError as exc:
        raise TestbenchError(str(exc)) from None
    if not out:
        raise TestbenchError(f"{path}: no UDP datagrams" + (f" to port {dport}" if dport else ""))
    return out
