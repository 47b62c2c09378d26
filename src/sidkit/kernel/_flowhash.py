# Strategy: the UDP flow hash that picks a SO_REUSEPORT socket, computed one way for every
# model that needs it. Group.flow_hash and Port.flow_hash used to carry two copies that had
# drifted apart (one defaulted the IPv6 address secret to 0, the other refused to guess);
# both now call udp_flow_hash, which resolves the era's udp_ehashfn / udp6_ehashfn and the
# v3.9-v3.12 IPv4 source-port quirk through the profile, and refuses an IPv6 hash without
# its secret. udp_flow_hash_many is the same over arrays (sidkit.hashing.batch, numpy).
"""The reuseport flow hash of a UDP datagram in one era, scalar and batch (private)."""

from __future__ import annotations

import functools
from typing import Any

from sidkit._errors import InputTypeError, InputValueError
from sidkit.kernel._profile import KernelProfile

__all__ = ["udp_flow_hash", "udp_flow_hash_many"]


@functools.lru_cache(maxsize=512)
def _resolved(prof: KernelProfile, name: str) -> Any:
    """``prof.function(name)``, resolved once per profile: a lookup per datagram would cost
    more than the hash."""
    return prof.function(name)


def _check_profile(prof: object) -> None:
    if not isinstance(prof, KernelProfile):
        raise InputTypeError(
            f"prof must be a KernelProfile (sidkit.kernel.profile()), not {type(prof).__name__}",
            code="not-a-profile",
        )


def _needs_secret(addr_secret: int | None) -> int:
    if addr_secret is None:
        raise InputValueError(
            "an IPv6 flow hash needs addr_secret (udp_ipv6_hash_secret): the kernel's is "
            "random, so there is no default to assume",
            code="needs-secret",
        )
    return addr_secret


def udp_flow_hash(
    prof: KernelProfile,
    laddr: str,
    lport: int,
    faddr: str,
    fport: int,
    initval: int,
    addr_secret: int | None = None,
) -> int:
    """``udp_ehashfn`` / ``udp6_ehashfn`` of *prof*'s era for a datagram from
    ``faddr:fport`` to ``laddr:lport`` (the lookup pass's address, see
    :class:`sidkit.reuseport.Port`).

    *initval* is the namespace's ``udp_ehash_secret`` (``udp6_ehash_secret`` for IPv6) +
    ``net_hash_mix``; IPv6 also needs *addr_secret*, ``udp_ipv6_hash_secret``. Kernel
    source: ``net/ipv4/udp.c`` ``udp_ehashfn()``, ``net/ipv6/udp.c`` ``udp6_ehashfn()``;
    v3.9-v3.12 passed ``htons(sport)`` (the eras row ``reuseport_udp4_sport``).
    """
    _check_profile(prof)
    if isinstance(laddr, str) and ":" in laddr:
        fn = _resolved(prof, "udp6_ehashfn")
        return int(fn(laddr, lport, faddr, fport, initval, _needs_secret(addr_secret)))
    sport = _resolved(prof, "reuseport_udp4_sport")(fport)
    return int(_resolved(prof, "udp_ehashfn")(laddr, lport, faddr, sport, initval))


def udp_flow_hash_many(
    prof: KernelProfile,
    laddr: Any,
    lport: Any,
    faddr: Any,
    fport: Any,
    initval: int,
    addr_secret: int | None = None,
    *,
    ipv6: bool,
) -> Any:
    """:func:`udp_flow_hash` of many datagrams of one family (*ipv6*) as a uint32 numpy array;
    each of *laddr*, *lport*, *faddr*, *fport* is one value or a sequence (addresses may be
    ``(n, 4|16)`` uint8 arrays), as :mod:`sidkit.hashing.batch` takes them. Needs numpy."""
    from sidkit.hashing import batch  # noqa: PLC0415  (numpy is an optional extra)
    from sidkit.hashing._bulk import as_uints  # noqa: PLC0415

    _check_profile(prof)
    if ipv6:
        fn = batch.function(prof, "udp6_ehashfn")
        return fn(laddr, lport, faddr, fport, initval, _needs_secret(addr_secret))
    ports = as_uints(fport, 16, "fport")
    if prof.era("reuseport_udp4_sport").variant == "htons":
        ports = ((ports & 0xFF) << 8) | (ports >> 8)
    return batch.function(prof, "udp_ehashfn")(laddr, lport, faddr, ports, initval)
