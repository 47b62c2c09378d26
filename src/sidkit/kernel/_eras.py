# Kernel eras are data. ERAS is the one table that says which algorithm each hash-related
# function of the kernel uses from which release on; a KernelProfile (a version plus host
# traits: byte order, BITS_PER_LONG) resolves a function name to the Python callable in
# force, bound to the host traits. Nothing else in sidkit branches on kernel versions: a
# model that needs "the jhash of 3.10" asks profile("3.10").function("jhash").
# Each row cites the source file, the first release of the form, and how that release is
# known (the commit, or the Debian source the harness compiled). Rows that no oracle has
# checked say so in `evidence`. Each row also carries structured provenance: the commit
# that introduced the form, its first mainline release, the stable releases that carry it
# (`backports`) or were checked not to (`not_in`), and a `status` -- "verified" only when
# the commit and its releases were read from primary sources (patch mails, pull requests,
# stable review series and announcements, kernel source); "unverified" with a one-line
# `note` saying what is missing, never a guess.
"""The eras table: which form of each kernel function holds from which release on."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

import attrs

from sidkit.bpf import cbpf, ebpf
from sidkit.hashing import _flow, _golden, _inet, _jhash, _nfct, _siphash, _toeplitz
from sidkit.kernel import _conntrack, _reuseport, _udp_lookup
from sidkit.kernel._version import KernelVersion

V = KernelVersion.parse

NOT_MODELLED = "not modelled"
"""Variant name of rows that mark a range sidkit does not model (``impl`` is None)."""
ABSENT = "absent"
"""Variant name of rows that mark a range in which the function does not exist."""

Status = Literal["verified", "unverified", "baseline", "external"]
"""How a row's provenance is known (:attr:`Era.status`)."""
STATUSES: tuple[Status, ...] = ("verified", "unverified", "baseline", "external")
"""Every value :attr:`Era.status` may take."""

_COMMIT = re.compile(r"^[0-9a-f]{12,40}$")


def _check_commit(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None and not _COMMIT.match(value):
        raise ValueError(f"eras table: commit must be 12-40 lowercase hex digits, got {value!r}")


def _check_status(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None and value not in STATUSES:
        raise ValueError(f"eras table: status must be one of {STATUSES}, got {value!r}")


@attrs.frozen
class Era:
    """One row of the eras table: *function* uses *impl* from release *since* on.

    The era lasts until the next row for the same function. ``backports`` lists the first
    release of older stable branches that carry this form too (a stable backport makes,
    say, 6.1.43 compute what mainline computes from 6.5 on). ``impl`` is None for a range
    in which the function does not exist (variant :data:`~sidkit.kernel.ABSENT`) or that
    sidkit does not model (variant :data:`~sidkit.kernel.NOT_MODELLED`).

    Provenance (keyword-only): ``commit`` introduced the form (12+ hex digits) and
    ``mainline`` is the first mainline release containing it; ``not_in`` names stable
    releases checked *not* to carry it. ``status`` says how far that is established:

    - ``"verified"``: commit, mainline release and the backports listed were read from
      primary sources (patch and pull-request mails, stable review series and release
      announcements, kernel source); ``note`` names stable series left unchecked;
    - ``"unverified"``: something could not be established; ``note`` says what, in one line;
    - ``"baseline"``: the row opens the modelled range at 2.6.12, the first release in git
      history, so there is no introducing commit (the next row's commit bounds it);
    - ``"external"``: not kernel code (the NIC's Toeplitz hash).

    ``status`` is None only for a row nobody has classified yet; the test suite refuses
    that, and the table still loads.
    """

    function: str
    since: KernelVersion
    variant: str
    impl: Callable[..., Any] | None
    source: str
    evidence: str
    backports: tuple[KernelVersion, ...] = ()
    commit: str | None = attrs.field(default=None, kw_only=True, validator=_check_commit)
    mainline: KernelVersion | None = attrs.field(default=None, kw_only=True)
    status: Status | None = attrs.field(default=None, kw_only=True, validator=_check_status)
    not_in: tuple[KernelVersion, ...] = attrs.field(default=(), kw_only=True)
    note: str = attrs.field(default="", kw_only=True)

    def backport_for(self, version: KernelVersion) -> KernelVersion | None:
        """The backport release through which *version* has this form, or None when it has
        it from mainline (or not at all)."""
        if self.since <= version:
            return None
        for b in self.backports:
            if (b.major, b.minor) == (version.major, version.minor) and b <= version:
                return b
        return None

    def applies_to(self, version: KernelVersion) -> bool:
        """True when *version* has this form: at or after *since*, or at or after a backport
        release in *version*'s own stable branch."""
        return self.since <= version or self.backport_for(version) is not None


def _era(
    function: str,
    since: str,
    variant: str,
    impl: Callable[..., Any] | None,
    source: str,
    evidence: str,
    backports: tuple[str, ...] = (),
    *,
    commit: str | None = None,
    mainline: str | None = None,
    status: Status | None = None,
    not_in: tuple[str, ...] = (),
    note: str = "",
) -> Era:
    return Era(
        function,
        V(since),
        variant,
        impl,
        source,
        evidence,
        tuple(map(V, backports)),
        commit=commit,
        mainline=None if mainline is None else V(mainline),
        status=status,
        not_in=tuple(map(V, not_in)),
        note=note,
    )


def _verified(commit: str, mainline: str, note: str = "") -> dict[str, Any]:
    """Provenance keywords of a row whose commit and releases were read from primary sources."""
    return {"commit": commit, "mainline": mainline, "status": "verified", "note": note}


def _unverified(
    note: str, commit: str | None = None, mainline: str | None = None
) -> dict[str, Any]:
    """Provenance keywords of a row whose commit or release could not be established."""
    return {"commit": commit, "mainline": mainline, "status": "unverified", "note": note}


_BASELINE: dict[str, Any] = {"status": "baseline"}


_JH = "include/linux/jhash.h"
_L3 = (
    "commit 60d509c823cc ('The new jhash implementation', Jozsef Kadlecsik, 2010-12-09, "
    "net-next after the 2.6.37 merge window closed): first in v2.6.38"
)
_NW = (
    "commit 2e7056c433216f ('jhash: Update jhash_[321]words functions to use correct "
    "initval', Alexander Duyck, 2015-04-03, net-next after v4.0): first in v4.1"
)
_FRR = (
    "lookup2 as compiled in Debian's frr (libfrr.so, lib/jhash.c: the kernel's lookup2 "
    "jhash.h), tests/hashing/test_lookup2_oracle.py"
)
_HARNESS = "kernel C compiled from Debian linux-source 6.1.192 and 6.12.117 (conformance/kernel)"
_LIVE = (
    "live-kernel bucket order of a BPF_F_ZERO_SEED hash map"
    " (tests/hashing/test_live_kernel_jhash.py)"
)
_UDPC = "net/ipv4/udp.c udp4_lib_lookup2() (net/ipv6/udp.c alike)"
_SRP = "net/core/sock_reuseport.c"
_RP_LIVE = "live kernel 6.18 in a private namespace (tests/reuseport/test_live_reuseport.py)"
_RP_SAME = (
    "same index as the 6.18 form when no member is connected and none set SO_INCOMING_CPU, "
    "which the live tests check"
)
_RP_HIST = "read from the kernel history; no live kernel of this era is available"
_HIST = "read from the kernel history (patch text); no compiled oracle reaches this era"
_NFCT = "net/netfilter/nf_conntrack_core.c"
_CT_UDP = "net/netfilter/nf_conntrack_proto_udp.c"
_CT_READ = "read in Debian's 6.1.192 and 6.12.117 sources (conformance/kernel/_work)"
_CT_SINCE = (
    "the form is read in 6.1.192 and 6.12.117; the release that introduced it is not pinned, "
    "so the row starts at 6.1 and earlier releases are the previous row's"
)
_I6 = (
    "commit d11b0df7ddf1 ('tcp: Reduce chance of collisions in inet6_hashfn()', Stewart "
    "Smith), v6.5 (Linux 6.5-rc4 shortlog); stable 6.4.8, 6.1.43, 5.15.124, 5.10.190, "
    "5.4.253, 4.19.291 and 4.14.322 (their release announcements, Aug 2023)"
)
_I6_BACK = ("6.4.8", "6.1.43", "5.15.124", "5.10.190", "5.4.253", "4.19.291", "4.14.322")
_U6 = (
    "commit 51d03e2f2203 ('udp6: fix udp6_ehashfn() typo'), v6.5 (Networking for 6.5-rc2), "
    "Fixes: 1bbdceef1e53; stable 6.4.5, 6.1.40, 5.15.121, 5.10.188, 5.4.251, 4.19.291 and "
    "4.14.322 (announcements, the 5.4.251 review series, the 4.14.y push ending at 4.14.322)"
)
_U6_BACK = ("6.4.5", "6.1.40", "5.15.121", "5.10.188", "5.4.251", "4.19.291", "4.14.322")
_1BBU = _unverified(
    "1bbdceef1e53 is the Fixes: of 51d03e2f2203; its v3.13 comes from a RHEL-7 backport table only",
    "1bbdceef1e53",
    "3.13",
)
_REREAD = "commit and release as first recorded from the kernel history; not re-read from a "
_L3U = _unverified(_REREAD + "patch, pull or tree in the corpora", "60d509c823cc", "2.6.38")
_NWU = _unverified(_REREAD + "patch, pull or tree in the corpora", "2e7056c43321", "4.1")
_SIPU = _unverified(
    "v4.11 not re-read; 2c956a60778c also appears in an older stable branch's shortlog, "
    "which this row does not place",
    "2c956a60778c",
    "4.11",
)
_E32 = "e32ea7e74727"  # 'soreuseport: fast reuseport UDP socket selection'
_E32_NOTE = (
    "v4.5 per the b261eda84ec1 patch text ('broken since 4.5/4.6 due to these commits'); "
    "a feature, no stable backport expected"
)
_BA4U = _unverified(
    "ba418fa357a7 ('soreuseport: UDP/IPv4 implementation', v3.9) is as recorded: neither "
    "its subject nor its release was found in the corpora",
    "ba418fa357a7",
    "3.9",
)
_ACD_BACK = ("5.3.1", "5.2.17", "4.19.75")
_ACD = (
    "acdcecc61285 ('udp: correct reuseport selection with connected sockets', v5.4; stable "
    "5.3.1, 5.2.17 and 4.19.75 per their review series and announcements; not in 4.14.146)"
)
_ACD_NOTE = "4.9.y and 4.4.y not checked; no 4.14.y copy found after 4.14.146 (not exhaustive)"

ERAS: tuple[Era, ...] = (
    # --- jhash family ------------------------------------------------------------------
    _era("jhash", "2.6.12", "lookup2", _jhash.jhash_lookup2, _JH, _FRR, **_BASELINE),
    _era("jhash", "2.6.38", "lookup3", _jhash.jhash, _JH, f"{_L3}; {_HARNESS}; {_LIVE}", **_L3U),
    _era("jhash2", "2.6.12", "lookup2", _jhash.jhash2_lookup2, _JH, _FRR, **_BASELINE),
    _era("jhash2", "2.6.38", "lookup3", _jhash.jhash2, _JH, f"{_L3}; {_HARNESS}; {_LIVE}", **_L3U),
    _era("jhash_3words", "2.6.12", "lookup2", _jhash.jhash_3words_lookup2, _JH, _FRR, **_BASELINE),
    _era(
        "jhash_3words",
        "2.6.38",
        "lookup3-golden",
        _jhash.jhash_3words_pre41,
        _JH,
        f"{_L3}; {_HIST}",
        **_L3U,
    ),
    _era(
        "jhash_3words",
        "4.1",
        "lookup3-nwords",
        _jhash.jhash_3words,
        _JH,
        f"{_NW}; {_HARNESS}",
        **_NWU,
    ),
    _era("jhash_2words", "2.6.12", "lookup2", _jhash.jhash_2words_lookup2, _JH, _FRR, **_BASELINE),
    _era(
        "jhash_2words",
        "2.6.38",
        "lookup3-golden",
        _jhash.jhash_2words_pre41,
        _JH,
        f"{_L3}; {_HIST}",
        **_L3U,
    ),
    _era(
        "jhash_2words",
        "4.1",
        "lookup3-nwords",
        _jhash.jhash_2words,
        _JH,
        f"{_NW}; {_HARNESS}",
        **_NWU,
    ),
    _era("jhash_1word", "2.6.12", "lookup2", _jhash.jhash_1word_lookup2, _JH, _FRR, **_BASELINE),
    _era(
        "jhash_1word",
        "2.6.38",
        "lookup3-golden",
        _jhash.jhash_1word_pre41,
        _JH,
        f"{_L3}; {_HIST}",
        **_L3U,
    ),
    _era(
        "jhash_1word",
        "4.1",
        "lookup3-nwords",
        _jhash.jhash_1word,
        _JH,
        f"{_NW}; {_HARNESS}",
        **_NWU,
    ),
    # --- multiplicative hashes -----------------------------------------------------------
    _era(
        "hash_32",
        "2.6.12",
        "golden-prime",
        _golden.hash_32_legacy,
        "include/linux/hash.h",
        "GOLDEN_RATIO_PRIME_32 = 0x9e370001; " + _HIST,
        **_BASELINE,
    ),
    _era(
        "hash_32",
        "4.7",
        "golden-ratio",
        _golden.hash_32,
        "include/linux/hash.h",
        "George Spelvin's hash.h rework (ef703f49a6c5), v4.7; " + _HARNESS,
        **_unverified(_REREAD + "patch, pull or tree in the corpora", "ef703f49a6c5", "4.7"),
    ),
    _era(
        "hash_64",
        "2.6.12",
        "golden-prime-shift-add",
        _golden.hash_64_legacy,
        "include/linux/hash.h",
        _HIST,
        **_unverified("the release that first had a hash_64() of this form was not established"),
    ),
    _era(
        "hash_64",
        "4.6",
        "golden-ratio-u64",
        _golden.hash_64_v46,
        "include/linux/hash.h",
        "commit 689de1d6ca95 ('Minimal fix-up of bad hashing behavior of hash_64()'), v4.6; "
        + _HIST,
        **_unverified(_REREAD + "patch, pull or tree in the corpora", "689de1d6ca95", "4.6"),
    ),
    _era(
        "hash_64",
        "4.7",
        "golden-ratio-u32",
        _golden.hash_64,
        "include/linux/hash.h",
        "v4.7 rework: hash_64_generic returns u32; " + _HARNESS,
        **_unverified("the commit of the u32 return within the v4.7 hash.h rework is not named"),
    ),
    _era(
        "reciprocal_scale",
        "3.18",
        "u64-multiply",
        _golden.reciprocal_scale,
        "include/linux/kernel.h, later include/linux/math.h",
        _HARNESS,
        **_unverified("the commit that added reciprocal_scale() (v3.18 as recorded) is not named"),
    ),
    _era(
        "next_pseudo_random32",
        "2.6.12",
        "lcg",
        _golden.next_pseudo_random32,
        "include/linux/random.h, later include/linux/prandom.h",
        _HARNESS,
        **_unverified(
            "present in the 6.1.192 and 6.12.117 sources; its first release was not established"
        ),
    ),
    _era(
        "next_pseudo_random32",
        "6.19",
        ABSENT,
        None,
        "include/linux/prandom.h",
        "removed by commit 3c0c81de525d ('prandom: remove next_pseudo_random32', Markus Theil) "
        "in the random-6.19-rc1 pull, v6.19; the earlier ids 93354d866ac4 (6.15 cycle) and "
        "602c988b7827 (6.16 cycle) sat in random/master for linux-next and were superseded",
        **_unverified(
            "v6.19 read from linux-next and linus-next merge logs only; no v6.15-v6.18 tree "
            "was read (6.12.117 still has the function)",
            "3c0c81de525d",
            "6.19",
        ),
    ),
    # --- siphash -------------------------------------------------------------------------
    _era(
        "siphash",
        "4.11",
        "siphash-2-4",
        _siphash.siphash,
        "lib/siphash.c",
        "lib/siphash.c added in v4.11; " + _HARNESS + "; SipHash reference vectors",
        **_SIPU,
    ),
    _era(
        "hsiphash",
        "4.11",
        "siphash-1-3/halfsiphash-1-3",
        _siphash.hsiphash,
        "lib/siphash.c",
        "v4.11; " + _HARNESS,
        **_SIPU,
    ),
    *(
        _era(
            n,
            "4.11",
            "siphash-2-4",
            getattr(_siphash, n),
            "include/linux/siphash.h",
            _HARNESS,
            **_SIPU,
        )
        for n in (
            "siphash_1u64",
            "siphash_2u64",
            "siphash_3u64",
            "siphash_4u64",
            "siphash_1u32",
            "siphash_3u32",
        )
    ),
    # --- inet / udp ehash ----------------------------------------------------------------
    _era(
        "udp_ehashfn",
        "3.9",
        "jhash_3words-golden",
        _inet.udp_ehashfn_pre41,
        "include/net/inet_sock.h (inet_ehashfn, v3.9-v3.12), net/ipv4/udp.c (v3.13-v4.0)",
        f"{_NW}: until then jhash_3words started from JHASH_INITVAL + initval; {_HIST}",
        **_BA4U,
    ),
    _era(
        "udp_ehashfn",
        "4.1",
        "jhash_3words",
        _inet.udp_ehashfn,
        "net/ipv4/udp.c",
        "before v3.13 UDP reuseport used inet_ehashfn (same expression, inet_ehash_secret); "
        "per-protocol udp_ehash_secret from v3.13 (65cd8033ff37); unchanged to 6.18; " + _HARNESS,
        **_NWU,
    ),
    _era(
        "inet_ehashfn",
        "2.6.12",
        "lport<<16",
        _inet.inet_ehashfn_pre615,
        "net/ipv4/inet_hashtables.c (include/net/inet_sock.h before v3.13)",
        _HARNESS,
        **_unverified(
            "the oldest modelled form; the release inet_ehashfn() first had it is unknown"
        ),
    ),
    _era(
        "inet_ehashfn",
        "6.15",
        "lport-added",
        _inet.inet_ehashfn,
        "net/ipv4/inet_hashtables.c",
        "commit 9544d60a2605 ('inet: change lport contribution to inet_ehashfn() and "
        "inet6_ehashfn()'), v6.15 ('[GIT PULL] Networking for v6.15'); " + _HIST,
        **_verified(
            "9544d60a2605", "6.15", "a net-next change; no stable copy found ('Upstream commit')"
        ),
    ),
    _era(
        "inet6_ehashfn",
        "3.13",
        "lport<<16",
        _inet.inet6_ehashfn_pre615,
        "net/ipv6/inet6_hashtables.c",
        _HARNESS,
        **_unverified(
            "v3.13 (the per-file split of the ehash functions) is as recorded, not re-read"
        ),
    ),
    _era(
        "inet6_ehashfn",
        "6.15",
        "lport-added",
        _inet.inet6_ehashfn,
        "net/ipv6/inet6_hashtables.c",
        "commit 9544d60a2605, v6.15; " + _HIST,
        **_verified(
            "9544d60a2605", "6.15", "a net-next change; no stable copy found ('Upstream commit')"
        ),
    ),
    _era(
        "udp6_ehashfn",
        "3.13",
        "jhash_3words",
        _inet.udp6_ehashfn,
        "net/ipv6/udp.c",
        _HARNESS,
        **_1BBU,
    ),
    _era(
        "udp6_ehash_initval",
        "3.13",
        "typo",
        _inet.udp6_ehash_initval_typo,
        "net/ipv6/udp.c",
        "the bug named by 51d03e2f2203 (Fixes: 1bbdceef1e53); " + _HIST,
        **_1BBU,
    ),
    _era(
        "udp6_ehash_initval",
        "6.5",
        "fixed",
        _inet.udp6_ehash_initval,
        "net/ipv6/udp.c",
        _U6,
        _U6_BACK,
        **_verified("51d03e2f2203", "6.5", "6.3.y not checked"),
    ),
    _era(
        "ipv6_addr_jhash",
        "3.13",
        "xor-fold",
        _inet.ipv6_addr_jhash_xorfold,
        "include/net/ipv6.h",
        _HIST,
        **_unverified(
            "the release that introduced __ipv6_addr_jhash() (v3.13 as recorded) is unknown"
        ),
    ),
    _era(
        "ipv6_addr_jhash",
        "6.5",
        "jhash2",
        _inet.ipv6_addr_jhash,
        "include/net/ipv6.h",
        _I6 + "; " + _HARNESS,
        _I6_BACK,
        **_verified("d11b0df7ddf1", "6.5", "every stable series of Aug 2023 carries it"),
    ),
    _era(
        "ipv4_portaddr_hash",
        "2.6.35",
        "jhash_1word",
        _inet.ipv4_portaddr_hash,
        "include/net/ip.h",
        _HARNESS,
        **_unverified(
            "the commit that added the port-address hash (v2.6.35 as recorded) is not named"
        ),
    ),
    _era(
        "ipv6_portaddr_hash",
        "2.6.35",
        "jhash2",
        _inet.ipv6_portaddr_hash,
        "include/net/ipv6.h",
        _HARNESS,
        **_unverified(
            "the commit that added the port-address hash (v2.6.35 as recorded) is not named"
        ),
    ),
    # --- nf_conntrack ----------------------------------------------------------------------
    _era(
        "hash_conntrack_raw",
        "2.6.34",
        "jhash2-zone-seed",
        _nfct.hash_conntrack_raw_jhash2_zone,
        _NFCT,
        "conntrack zones (2.6.34); " + _HIST,
        **_unverified("the commit that added conntrack zones (v2.6.34 as recorded) is not named"),
    ),
    _era(
        "hash_conntrack_raw",
        "4.3",
        "jhash2",
        _nfct.hash_conntrack_raw_jhash2,
        _NFCT,
        "zone left the seed with deedb59039f1 ('add direction support for zones'); " + _HIST,
        **_unverified(_REREAD + "patch, pull or tree in the corpora", "deedb59039f1", "4.3"),
    ),
    _era(
        "hash_conntrack_raw",
        "4.7",
        "jhash2-net-mix",
        _nfct.hash_conntrack_raw_jhash2_netmix,
        _NFCT,
        "commit 1b8c8a9f648c ('netfilter: conntrack: make netns address part of hash'), v4.7; "
        + _HIST,
        **_unverified(_REREAD + "patch, pull or tree in the corpora", "1b8c8a9f648c", "4.7"),
    ),
    _era(
        "hash_conntrack_raw",
        "5.15",
        "siphash-combined",
        _nfct.hash_conntrack_raw_combined,
        _NFCT,
        "dd6d2910c5e0 ('switch to siphash') + b16ac3c4c886 ('include zone id in tuple "
        "hash again'), v5.15; " + _HARNESS + " (6.1.192)",
        **_unverified(
            "dd6d2910c5e0 is seen in stable-rc push logs, but no pull request pins v5.15",
            "dd6d2910c5e0",
            "5.15",
        ),
    ),
    _era(
        "hash_conntrack_raw",
        "6.2",
        "siphash_4u64",
        _nfct.hash_conntrack_raw_siphash_4u64,
        _NFCT,
        "d2c806abcf0b ('use siphash_4u64'), v6.2, applied to net-next (patchwork bot mail); "
        "Debian's 6.1.192 does not carry it (the harness computes the 5.15 form); " + _HIST,
        not_in=("6.1.192",),
        **_unverified(
            "net-next of the 6.2 cycle, but no pull request pins v6.2", "d2c806abcf0b", "6.2"
        ),
    ),
    _era(
        "hash_conntrack_raw",
        "6.5",
        "siphash-tuple-key-mix",
        _nfct.hash_conntrack_raw,
        _NFCT,
        "eaf9e7192ec9 ('don't fold port numbers into addresses before hashing'), v6.5 "
        "(Networking for 6.5-rc2); stable 6.4.5 (its -rc1 review series, stable commit "
        "027685f7e490); not in 6.1.192; " + _HARNESS + " (6.12.117)",
        ("6.4.5",),
        not_in=("6.1.192",),
        **_verified(
            "eaf9e7192ec9", "6.5", "no copy in other series found (5.15.y and older not checked)"
        ),
    ),
    # --- nf_conntrack table behaviours (sidkit.conntrack.Table takes each from its profile) --
    _era(
        "ct_udp_timeouts",
        "2.6.12",
        "30s-180s",
        _conntrack.udp_timeouts_180,
        _CT_UDP,
        "nf_ct_udp_timeout = 30*HZ, nf_ct_udp_timeout_stream = 180*HZ, ASSURED on the first "
        "packet after a reply (2.6.x source text); " + _HIST,
        status="baseline",
        note="the release that moved to 120 s and the 2 s stream_ts is not pinned (before 6.1)",
    ),
    _era(
        "ct_udp_timeouts",
        "6.1",
        "30s-120s-stream-ts",
        _conntrack.udp_timeouts_stream_ts,
        _CT_UDP,
        "udp_timeouts[] 30*HZ/120*HZ (lines 28-29) and stream_ts = 2 * HZ + jiffies (6.1.192 "
        "line 100, 6.12.117 line 102); " + _CT_READ,
        **_unverified(_CT_SINCE),
    ),
    _era(
        "ct_chain_limit",
        "2.6.12",
        NOT_MODELLED,
        None,
        _NFCT,
        "__nf_conntrack_confirm's chain limit before 6.1 is not modelled",
        status="baseline",
    ),
    _era(
        "ct_chain_limit",
        "6.1",
        "random-50-79",
        _conntrack.chain_limit_random,
        _NFCT,
        "MIN_CHAINLEN + get_random_u32_below(MAX_CHAINLEN) per confirmation (6.12.117 line "
        "1238; 6.1.192 line 1252, prandom_u32_max); " + _CT_READ,
        **_unverified(_CT_SINCE),
    ),
    _era(
        "ct_early_drop",
        "2.6.12",
        NOT_MODELLED,
        None,
        _NFCT,
        "early_drop before 6.1 is not modelled",
        status="baseline",
    ),
    _era(
        "ct_early_drop",
        "6.1",
        "8-buckets-whole-chain",
        _conntrack.early_drop_buckets,
        _NFCT,
        "early_drop over NF_CT_EVICTION_RANGE buckets, early_drop_list evicting every "
        "non-assured entry of the first chain that has one (6.12.117 lines 1378-1449, 6.1.192 "
        "1402-1480); " + _CT_READ,
        **_unverified(_CT_SINCE),
    ),
    _era(
        "ct_gc_worker",
        "2.6.12",
        NOT_MODELLED,
        None,
        _NFCT,
        "gc_worker before 6.1 (b87a2f9199ea added it in 2016, scanning at most 1/64th of the "
        "table per run) is not modelled",
        status="baseline",
    ),
    _era(
        "ct_gc_worker",
        "6.1",
        "expired-max-64000-hz",
        _conntrack.gc_scan_expired_max,
        _NFCT,
        "gc_worker leaves a run once expired_count > GC_SCAN_EXPIRED_MAX (64000u / HZ, line "
        "97), evicting above nf_conntrack_max / 100 * 95 while the early_drop flag is set; "
        "any exit that schedules a next run clears the flag (6.12.117 lines 1495-1640, 6.1.192 "
        "1521-1670); " + _CT_READ,
        **_unverified(_CT_SINCE),
    ),
    _era(
        "ct_clash",
        "2.6.12",
        NOT_MODELLED,
        None,
        _NFCT,
        "clash resolution before 6.1 (71d8c47fc653 introduced it for UDP) is not modelled",
        status="baseline",
    ),
    _era(
        "ct_clash",
        "6.1",
        "merge-unnated-or-match",
        _conntrack.clash_merge_unnated_or_match,
        _NFCT,
        "nf_ct_resolve_clash: allow_clash for UDP, UDP-Lite and generic; __nf_ct_resolve_clash "
        "merges into a live winner without NAT done or with nf_ct_match (6.1.192 lines "
        "1018-1046), else nf_ct_resolve_clash_harder (REPLY node only, NAT_CLASH | "
        "FIXED_TIMEOUT, timeout + HZ; 1063-1113); " + _CT_READ + "; the kernel C compiled in "
        "conformance/kernel (conntrack_clash) agrees with the model "
        "(tests/conntrack/test_conntrack_clash_kernel.py)",
        **_unverified(_CT_SINCE),
    ),
    _era(
        "ct_clash",
        "6.12",
        "merge-match-or-reverse",
        _conntrack.clash_merge_match_or_reverse,
        _NFCT,
        "__nf_ct_resolve_clash merges when nf_ct_can_merge: nf_ct_match or "
        "nf_ct_match_reverse, NAT or not (6.12.117 lines 1006-1037), else "
        "nf_ct_resolve_clash_harder as in 6.1 (1055-1105); " + _CT_READ + "; compiled in "
        "conformance/kernel (conntrack_clash), tests/conntrack/test_conntrack_clash_kernel.py",
        **_unverified(
            "6.1.192 has the older merge test and 6.12.117 this one; the commit and the "
            "release between them that changed it are not pinned, so the row starts at 6.12"
        ),
    ),
    _era(
        "ct_stat_insert",
        "2.6.12",
        NOT_MODELLED,
        None,
        _NFCT,
        "where kernels before 6.1 counted the insert statistic is not modelled",
        status="baseline",
    ),
    _era(
        "ct_stat_insert",
        "6.1",
        "check-insert-only",
        _conntrack.insert_in_check_insert,
        _NFCT,
        "NF_CT_STAT_INC(net, insert) only in nf_conntrack_hash_check_insert (6.12.117 line "
        "906, 6.1.192 line 960); " + _CT_READ,
        **_unverified(_CT_SINCE),
    ),
    _era(
        "ct_tuple_ports",
        "2.6.12",
        "port-parsers",
        _conntrack.ports_parsed,
        _NFCT,
        "nf_ct_get_tuple zeroes the tuple and fills ports only for protocols with a port "
        "parser (6.12.117 lines 279-336, 6.1.192 289-346); " + _CT_READ,
        status="baseline",
        note="read in 6.1.192 and 6.12.117 only; older releases reached the same through "
        "per-protocol pkt_to_tuple callbacks (not re-read)",
    ),
    # --- flow dissector --------------------------------------------------------------------
    _era(
        "flow_hash_from_keys",
        "2.6.12",
        NOT_MODELLED,
        None,
        "net/core/flow_dissector.c",
        "jhash forms before v5.4 and the older consistentify (5.4-5.19) are not modelled",
        **_BASELINE,
    ),
    _era(
        "flow_hash_from_keys",
        "6.0",
        "siphash",
        _flow.flow_hash_from_keys,
        "net/core/flow_dissector.c",
        "siphash since 55667441c84f (v5.4); symmetric port/address sort of 64ae13ed4784 "
        "('net: core: fix flow symmetric hash', net/master after v6.0-rc4, so v6.0); " + _HARNESS,
        **_unverified(
            "64ae13ed4784 also went to 5.15.71 and 5.10.146 (their review series) and maybe "
            "older; whether those then compute this form is unchecked, so they stay not modelled",
            "64ae13ed4784",
            "6.0",
        ),
    ),
    # --- NIC RSS (no kernel era) -----------------------------------------------------------
    _era(
        "toeplitz",
        "2.6.12",
        "toeplitz",
        _toeplitz.toeplitz,
        "(NIC hardware; Microsoft RSS)",
        "Microsoft RSS verification suite; tools/testing/selftests/net/toeplitz.c",
        status="external",
    ),
    # --- SO_REUSEPORT selection ---------------------------------------------------------------
    _era(
        "reuseport_select",
        "2.6.12",
        ABSENT,
        None,
        "net/ipv4/udp.c",
        "SO_REUSEPORT arrived in v3.9 (c617f398edd4 TCP, ba418fa357a7 UDPv4)",
        **_BASELINE,
    ),
    _era("reuseport_select", "3.9", "score-loop", _reuseport.score_loop, _UDPC, _RP_HIST, **_BA4U),
    _era(
        "reuseport_select",
        "4.5",
        "group-hash",
        _reuseport.by_hash,
        _SRP,
        f"{_E32} ('soreuseport: fast reuseport UDP socket selection'), v4.5; " + _RP_SAME,
        **_verified(_E32, "4.5", _E32_NOTE),
    ),
    _era(
        "reuseport_select",
        "5.4",
        "group-hash-skip-connected",
        _reuseport.by_hash_skip_connected,
        _SRP,
        _ACD + ": reuseport_select_sock() walks past TCP_ESTABLISHED members from the hashed "
        "index; the lookup-side change efc6b6f6c311 ('udp: Improve load balancing for "
        "SO_REUSEPORT.', v5.8; stable 5.4.55, 4.19.136), which keeps the group's pick in "
        "udp[46]_lib_lookup2() when the group has connections, is a separate row; " + _RP_SAME,
        _ACD_BACK,
        not_in=("4.14.146",),
        **_verified("acdcecc61285", "5.4", _ACD_NOTE),
    ),
    _era(
        "reuseport_select",
        "6.2",
        "group-hash-incoming-cpu",
        _reuseport.by_hash_incoming_cpu,
        _SRP,
        "b261eda84ec1 ('soreuseport: Fix socket selection for SO_INCOMING_CPU.'), v6.2 "
        "(Networking for 6.2); stable 6.0.16, 6.1.2 and 5.15.86 (their -rc1 review series and "
        "stable-rc pushes; Debian's 6.1.192 source has it); " + _RP_LIVE,
        ("6.0.16", "6.1.2", "5.15.86"),
        **_verified(
            "b261eda84ec1",
            "6.2",
            "final 6.0.16/6.1.2/5.15.86 announcements not read; 5.10.y and older not found "
            "(reuseport_select_sock_by_hash() arrived in v5.14)",
        ),
    ),
    _era("reuseport_udp4_sport", "3.9", "htons", _reuseport.sport_htons, _UDPC, _RP_HIST, **_BA4U),
    _era(
        "reuseport_udp4_sport",
        "3.13",
        "raw",
        _reuseport.sport_raw,
        _UDPC,
        "65cd8033ff37 ('ipv4: split inet_ehashfn to hash functions per compilation unit'), "
        "v3.13; " + _RP_LIVE,
        **_unverified(
            "v3.13 from a RHEL-7 backport table only; that this commit dropped the htons() "
            "was not read from its diff",
            "65cd8033ff37",
            "3.13",
        ),
    ),
    _era(
        "reuseport_udp_connect",
        "3.9",
        "scored-out",
        _reuseport.connect_stays,
        _UDPC,
        "a connected socket scores -1 for every other peer, so it leaves the chain walk; "
        + _RP_HIST,
        **_BA4U,
    ),
    _era(
        "reuseport_udp_connect",
        "4.5",
        NOT_MODELLED,
        None,
        _UDPC,
        "v4.5-v5.3 return the group's pick for the first chain socket with the best score, "
        "so the outcome depends on hash-chain order (fixed by acdcecc61285, v5.4)",
        **_verified(_E32, "4.5", _E32_NOTE),
    ),
    _era(
        "reuseport_udp_connect",
        "5.4",
        "stays-in-group",
        _reuseport.connect_stays,
        _UDPC,
        _ACD + ": has_conns; the connected member still receives its own peer's datagrams. "
        "This holds only for members bound to a specific address: on every kernel since "
        "about v4.5 a wildcard-bound member that connect()s gets a local address, is rehashed "
        "(udp_lib_rehash() -> reuseport_detach_sock()) and leaves the group (the UDP port "
        "lookup rows model that case); " + _RP_HIST,
        _ACD_BACK,
        not_in=("4.14.146",),
        **_verified("acdcecc61285", "5.4", _ACD_NOTE),
    ),
    _era(
        "reuseport_udp_connect",
        "6.13",
        "leaves-group",
        _reuseport.connect_leaves,
        "net/ipv4/udp.c udp_lib_hash4(), net/ipv6/udp.c",
        "78c91ae2c6de / 1b29a730ef8b ('ipv4/ipv6 udp: Add 4-tuple hash for connected "
        "socket'), in net-next before the Networking for v6.13 pull, so v6.13; Debian's "
        "6.12.117 has no hash4; " + _RP_LIVE,
        not_in=("6.12.117",),
        **_verified(
            "78c91ae2c6de",
            "6.13",
            "a feature; no kernel.org stable copy found (a deepin 6.6 vendor backport exists)",
        ),
    ),
    _era(
        "reuseport_cbpf",
        "2.6.12",
        ABSENT,
        None,
        _SRP,
        "SO_ATTACH_REUSEPORT_CBPF arrived in v4.5 (538950a1b752)",
        **_BASELINE,
    ),
    _era(
        "reuseport_cbpf",
        "4.5",
        "index",
        cbpf.run,
        _SRP,
        "538950a1b752 ('soreuseport: setsockopt SO_ATTACH_REUSEPORT_[CE]BPF'), v4.5; " + _RP_LIVE,
        **_verified(
            "538950a1b752",
            "4.5",
            "v4.5 from kernelnewbies' Linux_4.5 and feature tables; a feature, no stable copy",
        ),
    ),
    _era(
        "reuseport_sk_reuseport",
        "2.6.12",
        ABSENT,
        None,
        _SRP,
        "BPF_PROG_TYPE_SK_REUSEPORT arrived in v4.19 (2dbb9b9e6df6)",
        **_BASELINE,
    ),
    _era(
        "reuseport_sk_reuseport",
        "4.19",
        "verdict",
        ebpf.run_sk_reuseport,
        _SRP,
        "2dbb9b9e6df6 ('bpf: Introduce BPF_PROG_TYPE_SK_REUSEPORT'), v4.19; " + _RP_LIVE,
        **_verified(
            "2dbb9b9e6df6", "4.19", "v4.19 from feature tables and docs; a feature, no stable copy"
        ),
    ),
    _era(
        "reuseport_migration",
        "2.6.12",
        ABSENT,
        None,
        _SRP,
        "closed-socket section and request migration arrived in v5.14 (5c040eaf5d17...)",
        **_BASELINE,
    ),
    _era(
        "reuseport_migration",
        "5.14",
        "closed-section",
        _reuseport.swap_remove,
        _SRP,
        "Kuniyuki Iwashima's 'Socket migration for SO_REUSEPORT' series: 5c040eaf5d17 "
        "('tcp: Add num_closed_socks to struct sock_reuseport.'), 333bb73f620e ('Keep "
        "TCP_CLOSE sockets in the reuseport group.'), 1cd62c21572c ('tcp: Add "
        "reuseport_migrate_sock() to select a new listener.'); in the Networking for v5.14 "
        "pull, so v5.14; " + _RP_HIST,
        **_verified("5c040eaf5d17", "5.14", "a feature, no stable copy expected"),
    ),
    # --- UDP port lookup (Port) ---------------------------------------------------------------
    # How udp4_lib_lookup2()/udp6_lib_lookup2() walk one secondary chain: what a socket's
    # score, its group's pick and the group's connections add up to (sidkit.reuseport.Port).
    _era(
        "udp_lookup2",
        "2.6.12",
        NOT_MODELLED,
        None,
        _UDPC,
        "before v5.0 __udp4_lib_lookup() walked the port's primary chain when it held at most "
        "10 sockets (hashing the real destination for wildcard groups) and the secondary "
        "chains only above that; Port does not model it (Group models the group's selection)",
        status="baseline",
    ),
    _era(
        "udp_lookup2",
        "5.0",
        "early-return",
        _udp_lookup.walk_early_return,
        _UDPC,
        "the lookup always takes two secondary-chain passes (the destination, then the "
        "wildcard, hashed with the wildcard address); a group's pick is returned at once, "
        "connected members included",
        commit="4cdeeee9252a",
        mainline="5.0",
        status="verified",
        note="4cdeeee9252a ('net: udp: prefer listeners bound to an address'): in v5.0, not "
        "v4.20 (netdev bisect report); no stable backport found, so 4.19.y keeps the old walk",
    ),
    _era(
        "udp_lookup2",
        "5.4",
        "conns-fallback",
        _udp_lookup.walk_conns_fallback,
        _UDPC,
        "acdcecc61285 ('udp: correct reuseport selection with connected sockets'): a group "
        "with connections has its pick thrown away for the chain socket",
        ("5.3.1", "5.2.17"),
        commit="acdcecc61285",
        mainline="5.4",
        status="verified",
        note="also in 4.19.75, whose primary-chain lookup Port does not model",
    ),
    _era(
        "udp_lookup2",
        "5.8",
        "keep-pick",
        _udp_lookup.walk_keep_pick,
        _UDPC,
        "efc6b6f6c311 ('udp: Improve load balancing for SO_REUSEPORT.'): the group's pick is "
        "kept as the candidate when the group has connections",
        ("5.4.55",),
        commit="efc6b6f6c311",
        mainline="5.8",
        status="verified",
        note="also in 4.19.136 (not modelled by Port); 5.7.12 unverified",
    ),
    _era(
        "udp_lookup2",
        "6.6",
        "rescore",
        _udp_lookup.walk_rescore,
        _UDPC,
        "f0ea27e7bfe1 ('udp: re-score reuseport groups when connected sockets are present', "
        "Fixes: efc6b6f6c311): the kept pick is scored itself (50aee97d1511, v6.10, rewrote it "
        "as 'goto rescore' with the same result); read from Debian's 6.1.192 and 6.12.117 "
        "sources; " + _RP_LIVE,
        ("6.1.53", "5.10.195"),
        commit="f0ea27e7bfe1",
        mainline="6.6",
        status="unverified",
        note="v6.6 inferred from the bpf-next tree and the date (July 2023), the pull not "
        "seen; 6.1.53 and 5.10.195 from their review series, other stable series unpinned",
    ),
    _era(
        "udp_lookup1",
        "2.6.12",
        ABSENT,
        None,
        _UDPC.replace("udp4_lib_lookup2()", "udp4_lib_lookup1()"),
        "from v5.0 no primary-chain walk follows the two secondary passes",
        status="baseline",
    ),
    _era(
        "udp_lookup1",
        "6.14",
        "primary-fallback",
        _udp_lookup.walk_primary,
        _UDPC.replace("udp4_lib_lookup2()", "udp4_lib_lookup1()"),
        "a502ea6fa94b ('udp: Deal with race between UDP socket address change and rehash'): "
        "the primary chain is walked, without groups, when both passes found nothing; "
        "kernel C of 6.1.192 and 6.12.117 (tests/reuseport/test_udp_lookup_kernel.py) and the "
        "live 6.18 kernel deliver IPv4 to 127.0.0.6 to an IPv6 socket connected to an IPv6 peer",
        ("6.13.2", "6.12.117", "6.1.192", "5.10.235"),
        commit="a502ea6fa94b",
        mainline="6.14",
        status="unverified",
        note="6.13.2 and 5.10.235 from their stable series; 6.12.117 and 6.1.192 carry it "
        "(read from Debian's source) but their series' first releases with it are not pinned",
    ),
    _era(
        "udp_disconnect",
        "2.6.12",
        "no-rehash",
        _udp_lookup.disconnect_keeps_chain,
        _UDPC.replace("udp4_lib_lookup2()", "__udp_disconnect()"),
        "connect(AF_UNSPEC) clears the local address of a wildcard-bound socket but leaves it "
        "on the secondary chain of the address it had: no lookup pass finds it (v5.0-v5.5)",
        status="baseline",
    ),
    _era(
        "udp_disconnect",
        "5.6",
        "rehash",
        _udp_lookup.disconnect_rehashes,
        _UDPC.replace("udp4_lib_lookup2()", "__udp_disconnect()"),
        "303d0403b8c2 ('udp: rehash on disconnect'): the socket moves back to the wildcard "
        "chain (at its head), a lone socket -- no era puts it back into a group",
        ("5.4.24", "5.5.8"),
        commit="303d0403b8c2",
        mainline="5.6",
        status="unverified",
        note="v5.6 inferred from the net tree's date (Feb 2020); 5.4.24 and 5.5.8 from their "
        "review series",
    ),
)


def _check_table(eras: tuple[Era, ...]) -> dict[str, tuple[Era, ...]]:
    by_fn: dict[str, list[Era]] = {}
    for e in eras:
        by_fn.setdefault(e.function, []).append(e)
    for fn, rows in by_fn.items():
        if [r.since for r in rows] != sorted({r.since for r in rows}):  # strictly increasing
            raise AssertionError(f"eras table: rows of {fn} must be in increasing release order")
    return {fn: tuple(rows) for fn, rows in by_fn.items()}


_BY_FUNCTION = _check_table(ERAS)
