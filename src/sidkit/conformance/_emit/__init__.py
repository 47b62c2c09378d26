# Strategy: turns selected conformance vector groups into something a kernel or eBPF author
# can compile: the same JSON schema as the vector files, a self-contained C table, or a KUnit
# suite. The expected values are copied from the vector files unchanged -- the emitter never
# computes a hash, so an emitted table carries the authority of the oracle its group names,
# not sidkit's.
#
# A C table must call something a kernel test can call. Most functions are called as they
# are (jhash*, hash_32/64, reciprocal_scale, siphash*, __ipv6_addr_jhash, the portaddr hashes,
# flow_hash_from_keys_seed). The ehash functions read boot-time random secrets no test can set,
# so their tables call the header inlines those functions are made of (__inet_ehashfn,
# __inet6_ehashfn + __ipv6_addr_jhash) with the vector's initval, and say so. Every call goes
# through an overridable SIDKIT_CALL_<fn>() macro, so the same table can check a BPF port or
# the real function inside its own file. Functions nothing outside their .c file can call with
# the vectors' inputs (hash_conntrack_raw), removed ones and non-kernel ones are refused with
# the reason. Tables whose results depend on byte order or BITS_PER_LONG compile only where
# they hold.
#
# This package's face: emit() picks the format. Below it, imports pointing down only: _cfile
# (the C/KUnit file) -> _tables (one table per function) -> _specs (the CSpec per function) ->
# _literals (C literals) -> _common (EmitError, Selection, --limit); _json beside the C side.
"""Emit conformance vectors as JSON, a C table or a KUnit suite (private; ``sidkit vectors``)."""

from __future__ import annotations

from collections.abc import Sequence

from sidkit._errors import InputValueError
from sidkit.conformance._emit._cfile import emit_c
from sidkit.conformance._emit._common import EmitError, Format, Selection, limit_tests
from sidkit.conformance._emit._json import emit_json
from sidkit.conformance._emit._specs import EMITTABLE, NOT_EMITTABLE

__all__ = [
    "EMITTABLE",
    "NOT_EMITTABLE",
    "EmitError",
    "Format",
    "Selection",
    "emit",
    "emit_c",
    "emit_json",
    "limit_tests",
]


def emit(
    selection: Selection,
    fmt: Format,
    *,
    command: str,
    functions: Sequence[str] = (),
    kernel: str | None = None,
    limit: int | None = None,
) -> str:
    """Emit *selection* (already filtered by function and kernel) in *fmt*."""
    chosen = limit_tests(selection, limit)
    if fmt == "json":
        return emit_json(chosen, command=command)
    if fmt in ("c", "kunit"):
        return emit_c(
            chosen,
            kunit=fmt == "kunit",
            command=command,
            functions=functions,
            kernel=kernel,
            limit=limit,
        )
    raise InputValueError(f"unknown format {fmt!r} (json, c, kunit)", code="bad-format")
