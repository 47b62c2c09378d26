"""The eras table's provenance: every row says where its form comes from, or that it cannot.

The release expectations below are the primary evidence the rows cite (stable review series,
release announcements, pull requests), restated as facts about named releases, so a row
that loses a backport or gains a wrong one fails here rather than in a model far away.
"""

from __future__ import annotations

import re

import attrs
import pytest

from sidkit.kernel import ERAS, KernelVersion, profile
from sidkit.kernel._eras import STATUSES, Era
from sidkit.kernel._version import FIRST

V = KernelVersion.parse


def _row(function: str, since: str) -> Era:
    (row,) = [e for e in ERAS if e.function == function and e.since == V(since)]
    return row


@pytest.mark.parametrize("era", ERAS, ids=lambda e: f"{e.function}@{e.since}")
def test_every_row_has_a_commit_or_says_why_not(era: Era) -> None:
    assert era.status in STATUSES, (
        f"{era.function} {era.since}: classify the row (status=..., with commit= and "
        "mainline= when verified, note= when unverified)"
    )
    if era.status == "verified":
        assert era.commit and era.mainline, era
        # The row starts where its commit first reached mainline.
        assert era.mainline == era.since, era
    elif era.status == "unverified":
        assert era.note.strip() and "\n" not in era.note, era
    elif era.status == "baseline":
        assert era.since == FIRST and era.commit is None, era
    if era.commit is not None:
        assert re.fullmatch(r"[0-9a-f]{12,40}", era.commit), era


@pytest.mark.parametrize("era", ERAS, ids=lambda e: f"{e.function}@{e.since}")
def test_backports_and_exclusions_are_consistent(era: Era) -> None:
    for b in era.backports:
        assert b < era.since and b.patch > 0, era  # a stable release of an older branch
        assert era.applies_to(b) and era.backport_for(b) == b
    for n in era.not_in:
        assert not era.applies_to(n), era  # a release checked not to carry it must not
    branches = [(b.major, b.minor) for b in era.backports]
    assert len(branches) == len(set(branches)), era  # one first release per branch


def test_commit_ids_are_validated() -> None:
    row = _row("reuseport_select", "5.4")
    with pytest.raises(ValueError, match="hex"):
        attrs.evolve(row, commit="acdcecc")  # too short to name a commit
    with pytest.raises(ValueError, match="status"):
        attrs.evolve(row, status="probably")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kernel", "function", "variant"),
    [
        # acdcecc61285 (v5.4; stable 5.3.1, 5.2.17, 4.19.75; not in 4.14.146)
        ("5.4", "reuseport_select", "group-hash-skip-connected"),
        ("5.3.1", "reuseport_select", "group-hash-skip-connected"),
        ("5.3", "reuseport_select", "group-hash"),
        ("5.2.17", "reuseport_select", "group-hash-skip-connected"),
        ("5.2.16", "reuseport_select", "group-hash"),
        ("4.19.75", "reuseport_select", "group-hash-skip-connected"),
        ("4.19.74", "reuseport_select", "group-hash"),
        ("4.14.146", "reuseport_select", "group-hash"),
        ("5.4.54", "reuseport_select", "group-hash-skip-connected"),  # not waiting for 5.8
        ("5.7", "reuseport_select", "group-hash-skip-connected"),
        ("5.3.1", "reuseport_udp_connect", "stays-in-group"),
        # b261eda84ec1 (v6.2; stable 6.0.16, 6.1.2, 5.15.86)
        ("6.1.192", "reuseport_select", "group-hash-incoming-cpu"),
        ("6.1.2", "reuseport_select", "group-hash-incoming-cpu"),
        ("6.1.1", "reuseport_select", "group-hash-skip-connected"),
        ("6.0.16", "reuseport_select", "group-hash-incoming-cpu"),
        ("5.15.86", "reuseport_select", "group-hash-incoming-cpu"),
        ("5.15.85", "reuseport_select", "group-hash-skip-connected"),
        ("5.10.200", "reuseport_select", "group-hash-skip-connected"),
        # eaf9e7192ec9 (v6.5; stable 6.4.5) and 51d03e2f2203 (v6.5; stable 6.4.5, 4.14.322, ...)
        ("6.4.5", "hash_conntrack_raw", "siphash-tuple-key-mix"),
        ("6.4.4", "hash_conntrack_raw", "siphash_4u64"),
        ("6.4.5", "udp6_ehash_initval", "fixed"),
        ("6.4.4", "udp6_ehash_initval", "typo"),
        ("4.14.322", "udp6_ehash_initval", "fixed"),
        ("4.14.321", "udp6_ehash_initval", "typo"),
        # d11b0df7ddf1 (v6.5; every stable series of Aug 2023)
        ("6.4.8", "ipv6_addr_jhash", "jhash2"),
        ("6.4.7", "ipv6_addr_jhash", "xor-fold"),
        ("5.4.253", "ipv6_addr_jhash", "jhash2"),
        ("4.19.291", "ipv6_addr_jhash", "jhash2"),
        ("4.14.322", "ipv6_addr_jhash", "jhash2"),
        # 78c91ae2c6de (v6.13), not in Debian's 6.12.117
        ("6.12.117", "reuseport_udp_connect", "stays-in-group"),
        ("6.13", "reuseport_udp_connect", "leaves-group"),
    ],
)
def test_corrected_rows_resolve(kernel: str, function: str, variant: str) -> None:
    assert profile(kernel).era(function).variant == variant


def test_skip_connected_is_credited_to_acdcecc61285_not_efc6b6f6c311() -> None:
    row = profile("5.4").era("reuseport_select")
    assert (row.commit, row.mainline, row.status) == ("acdcecc61285", V("5.4"), "verified")
    assert row.backports == (V("5.3.1"), V("5.2.17"), V("4.19.75"))
    assert V("4.14.146") in row.not_in
    # efc6b6f6c311 changed udp[46]_lib_lookup2(), not reuseport_select_sock(): no
    # reuseport_select row may be introduced by it, though the 5.4 row names it as separate.
    selects = [e for e in ERAS if e.function == "reuseport_select"]
    assert all(e.commit != "efc6b6f6c311" for e in selects)
    assert [str(e.since) for e in selects] == ["2.6.12", "3.9", "4.5", "5.4", "6.2"]
    assert "efc6b6f6c311" in row.evidence and "separate row" in row.evidence


def test_wildcard_connect_caveat_is_stated() -> None:
    row = _row("reuseport_udp_connect", "5.4")
    assert row.impl is not None and "wildcard" in row.evidence
    assert "reuseport_detach_sock" in row.evidence


def test_next_pseudo_random32_removal_is_the_6_19_commit_and_unverified() -> None:
    row = _row("next_pseudo_random32", "6.19")
    assert (row.commit, row.mainline, row.status) == ("3c0c81de525d", V("6.19"), "unverified")
    assert not any(e.commit == "93354d866ac4" for e in ERAS)  # the superseded 6.15-cycle id


def test_migration_cites_num_closed_socks_by_its_own_id() -> None:
    row = _row("reuseport_migration", "5.14")
    assert row.commit == "5c040eaf5d17" and row.status == "verified"
    assert "1cd62c21572c ('tcp: Add reuseport_migrate_sock()" in row.evidence


def test_old_rows_keep_working_without_provenance() -> None:
    # _era()'s new parameters are keyword-only with defaults: a row without them loads
    # (status None), and only the classification test above refuses it.
    bare = Era("f", V("6.1"), "x", None, "src", "ev")
    assert bare.status is None and bare.commit is None and bare.not_in == ()
