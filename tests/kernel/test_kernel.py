"""The eras table and kernel profiles: version parsing, era resolution, backports, errors."""

from __future__ import annotations

import pytest

import sidkit
from sidkit import hashing as h
from sidkit.kernel import ERAS, LATEST, KernelVersion, profile


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6.12", (6, 12, 0)),
        ("2.6.37", (2, 6, 37)),
        ("6.18.44-fc-v782", (6, 18, 44)),
        ("v5.15.0-91-generic", (5, 15, 0)),
    ],
)
def test_version_parse(text: str, expected: tuple[int, int, int]) -> None:
    v = KernelVersion.parse(text)
    assert (v.major, v.minor, v.patch) == expected


@pytest.mark.parametrize("bad", ["", "six", "1.0", "2.4.37", "100.1"])
def test_bad_versions_are_sidkit_value_errors(bad: str) -> None:
    with pytest.raises(sidkit.UnknownKernelError) as info:
        profile(bad)
    assert isinstance(info.value, ValueError)


def test_default_profile_is_latest_and_modern() -> None:
    p = profile()
    assert p.version == LATEST
    assert p.function("jhash") is h.jhash
    assert p.era("hash_conntrack_raw").variant == "siphash-tuple-key-mix"


@pytest.mark.parametrize(
    ("kernel", "function", "variant"),
    [
        ("2.6.36", "jhash", "lookup2"),
        ("2.6.37", "jhash", "lookup2"),
        ("2.6.38", "jhash", "lookup3"),
        ("3.10", "jhash_3words", "lookup3-golden"),
        ("4.1", "jhash_3words", "lookup3-nwords"),
        ("4.5", "hash_64", "golden-prime-shift-add"),
        ("4.6", "hash_64", "golden-ratio-u64"),
        ("4.7", "hash_32", "golden-ratio"),
        ("6.14", "inet_ehashfn", "lport<<16"),
        ("6.15", "inet_ehashfn", "lport-added"),
        ("6.1.42", "ipv6_addr_jhash", "xor-fold"),
        ("6.1.43", "ipv6_addr_jhash", "jhash2"),  # the stable backport
        ("5.15.123", "ipv6_addr_jhash", "xor-fold"),
        ("5.15.124", "ipv6_addr_jhash", "jhash2"),
        ("6.1.39", "udp6_ehash_initval", "typo"),
        ("6.1.40", "udp6_ehash_initval", "fixed"),
        ("4.19.291", "udp6_ehash_initval", "fixed"),
        ("6.0", "ipv6_addr_jhash", "xor-fold"),
        ("6.4", "ipv6_addr_jhash", "xor-fold"),
        ("6.5", "ipv6_addr_jhash", "jhash2"),
        ("4.2", "hash_conntrack_raw", "jhash2-zone-seed"),
        ("4.4", "hash_conntrack_raw", "jhash2"),
        ("5.10", "hash_conntrack_raw", "jhash2-net-mix"),
        ("6.1.192", "hash_conntrack_raw", "siphash-combined"),
        ("6.3", "hash_conntrack_raw", "siphash_4u64"),
        ("6.12", "hash_conntrack_raw", "siphash-tuple-key-mix"),
        ("6.4", "udp6_ehash_initval", "typo"),
        ("6.5", "udp6_ehash_initval", "fixed"),
        ("6.18", "next_pseudo_random32", "lcg"),  # removed by 3c0c81de525d in v6.19
        ("6.19", "next_pseudo_random32", "absent"),
    ],
)
def test_era_resolution(kernel: str, function: str, variant: str) -> None:
    assert profile(kernel).era(function).variant == variant


def test_era_changes_the_result() -> None:
    # The table is only worth having if eras really compute different values.
    assert profile("2.6.36").function("jhash")(b"abc", 0) != h.jhash(b"abc", 0)
    assert profile("3.10").function("jhash_3words")(1, 2, 3, 0) != h.jhash_3words(1, 2, 3, 0)
    a = ("10.0.0.1", 4433, "192.0.2.7", 5000, 99)
    assert profile("6.14").function("inet_ehashfn")(*a) != profile("6.15").function("inet_ehashfn")(
        *a
    )
    assert profile("6.4").function("udp6_ehash_initval")(1, 2, 3) == 5
    assert profile("6.5").function("udp6_ehash_initval")(1, 2, 3) == 4


def test_absent_and_unmodelled_are_clear_errors() -> None:
    with pytest.raises(sidkit.UnknownKernelError, match="does not exist"):
        profile("6.19").function("next_pseudo_random32")
    with pytest.raises(sidkit.UnknownKernelError, match="not modelled"):
        profile("5.10").function("flow_hash_from_keys")
    with pytest.raises(sidkit.UnknownKernelError, match="does not exist"):
        profile("4.10").function("siphash")
    with pytest.raises(sidkit.UnknownKernelError, match="no kernel function"):
        profile().function("md5")


def test_big_endian_profile_changes_address_reinterpretation() -> None:
    be = profile("6.12", byteorder="big")
    le = profile("6.12")
    a = ("10.0.0.1", 4433, "192.0.2.7", 5000, 99)
    assert be.function("udp_ehashfn")(*a) != le.function("udp_ehashfn")(*a)
    # On a big-endian host (__force u32) of a __be32 is the address as written.
    assert be.function("udp_ehashfn")(*a) == h.jhash_3words(
        0x0A000001, 0xC0000207, (4433 << 16) | 5000, 99
    )


def test_every_row_cites_source_and_evidence() -> None:
    for era in ERAS:
        assert era.source and era.evidence, era
