"""The reuseport group model across eras, against cases checked by hand from kernel source.

Each expected value below is worked out from the C quoted in the docstrings of
sidkit.kernel._reuseport (not produced by sidkit); the live-kernel tests cover the 6.18 forms.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidkit import UnknownKernelError
from sidkit.hashing import jhash, next_pseudo_random32, udp_ehashfn
from sidkit.hashing._inet import udp_ehashfn_pre41
from sidkit.reuseport import Group, Member, SeedPatch
from sidkit.steering import FixedOffset


def names(g: Group) -> list[object]:
    return [m.name for m in g.socks]


def picked(g: Group, hash: int, **kw: object) -> object:
    m = g.select(hash, **kw)  # type: ignore[arg-type]
    assert isinstance(m, Member)
    return m.name


def test_score_loop_hand_checked() -> None:
    g = Group("3.10")
    for n in "ABC":
        g.join(n)
    # chain is newest first: C, B, A. Second socket B wins iff hash*2 >> 32 == 0, i.e.
    # hash < 2**31; the third wins iff next_pseudo_random32(hash) * 3 >> 32 == 0.
    # hash 0: B takes over (0 < 2**31), then 0*1664525 + 1013904223 = 0x3c6ef35f < 2**32/3,
    # so A (third in the walk) takes over: A.
    assert next_pseudo_random32(0) == 0x3C6EF35F
    assert picked(g, 0) == "A"
    # hash 2**31: B does not win; 0x80000000*1664525 + 0x3c6ef35f = 0xbc6ef35f > 2**32/3: C.
    assert picked(g, 0x8000_0000) == "C"
    g2 = Group("4.4")
    g2.join("A")
    g2.join("B")
    assert picked(g2, 0x7FFF_FFFF) == "A"  # second in the walk (B, A) wins below 2**31
    assert picked(g2, 0x8000_0000) == "B"


def test_score_loop_close_keeps_chain_order() -> None:
    g = Group("4.0")
    for n in range(4):
        g.join(n)
    g.close(1)
    assert names(g) == [0, 2, 3]


def test_seed_patch_hashes_the_sid() -> None:
    patch = SeedPatch(FixedOffset(2, 4), initval=7)
    g = Group("3.10", seed_patch=patch)
    plain = Group("3.10")
    for n in range(4):
        g.join(n)
        plain.join(n)
    payload = b"\x00\x00SIDS rest"
    sid_hash = jhash(b"SIDS", 7)
    # any 5-tuple hash gives the same socket: the one the SID's hash picks in the plain loop
    for h in (0, 0x1234, 0xFFFF_FFFF):
        assert picked(g, h, payload=payload) == picked(plain, sid_hash)
    assert picked(g, 0x1234, payload=b"\x00") == picked(plain, 0x1234)  # no SID: tuple hash
    with pytest.raises(ValueError):
        Group("6.1", seed_patch=patch)


def test_udp4_sport_quirk_before_3_13() -> None:
    g310, g313, g41 = Group("3.10"), Group("3.13"), Group("4.1")
    args = ("10.0.0.1", 4433, "192.0.2.7", 0x1234, 99)
    assert g310.flow_hash(*args) == udp_ehashfn_pre41("10.0.0.1", 4433, "192.0.2.7", 0x3412, 99)
    assert g313.flow_hash(*args) == udp_ehashfn_pre41(*args)
    assert g41.flow_hash(*args) == udp_ehashfn(*args)


def test_group_swap_remove() -> None:
    g = Group("4.5")
    for n in range(5):
        g.join(n)
    g.close(1)
    assert names(g) == [0, 4, 2, 3]
    g.close(3)
    assert names(g) == [0, 4, 2]
    g.join(9)
    assert names(g) == [0, 4, 2, 9]


@given(st.integers(0, 2**32 - 1), st.integers(1, 64))
def test_group_hash_is_reciprocal_scale(hash: int, n: int) -> None:
    g = Group("6.18")
    for i in range(n):
        g.join(i)
    assert picked(g, hash) == (hash * n) >> 32


def test_connected_member_per_era() -> None:
    peer = ("192.0.2.1", 5555)
    low = 0x5000_0000  # reciprocal_scale(low, 3) == 0x5000_0000 * 3 >> 32 == 0
    mid = 0x6000_0000  # index 1
    for kernel, variant in (
        ("4.19.75", "skip"),  # acdcecc61285 (v5.4) skips connected members; also in 4.19.75
        ("5.4", "skip"),
        ("5.8", "skip"),
        ("6.12", "skip"),
        ("6.18", "leaves"),
    ):
        g = Group(kernel)
        for n in range(3):
            g.join(n)
        g.connect(1, peer)
        assert picked(g, low, peer=peer) == 1  # its own peer always reaches it
        if variant == "skip":
            assert names(g) == [0, 1, 2] and picked(g, mid) == 2  # walks past the connected one
        else:
            assert names(g) == [0, 2]  # left the group by swap-remove
            assert picked(g, mid) == [0, 2][(mid * 2) >> 32]
    with pytest.raises(UnknownKernelError):
        Group("4.9").connect(Group("4.9").join(0), peer)


def test_incoming_cpu_preference_from_6_2() -> None:
    for kernel, prefers in (("6.1", False), ("6.2", True), ("6.18", True)):
        g = Group(kernel)
        for n in range(4):
            g.join(n)
        g.set_incoming_cpu(2, 1)
        # hash 0 -> start at index 0; walking 0, 1, 2 finds CPU 1's socket at 2
        assert picked(g, 0, cpu=1) == (2 if prefers else 0)
        assert picked(g, 0, cpu=3) == 0  # nobody on CPU 3: the first unconnected from the start


def test_migration_closed_section() -> None:
    g = Group("5.14", protocol="tcp", migrate=True)
    for n in range(3):
        g.join(n)
    g.close(0)
    assert names(g) == [2, 1]
    assert [m.name for m in g.closed] == [0]
    target = g.migrate_target(0xFFFF_FFFF)
    assert target is not None and target.name == 1
    with pytest.raises(UnknownKernelError):
        Group("5.10", protocol="tcp", migrate=True)


def test_programs_need_their_era() -> None:
    with pytest.raises(UnknownKernelError):
        Group("4.4").attach_cbpf([])
    with pytest.raises(UnknownKernelError):
        Group("4.18").attach_ebpf([], [])
    with pytest.raises(UnknownKernelError):
        Group("3.8")
