"""WireGuard transport data sizes: Linux pads the plaintext to 16 bytes except at the device
MTU (drivers/net/wireguard/send.c, calculate_skb_padding()), so below any MTU a message is
32 + 16k bytes. The corpus found Zoom media (81- and 109-byte payloads starting 04 00 00 00)
that a size-blind rule took for WireGuard."""

from __future__ import annotations

import pytest
import sidkit_wireguard as wg
from hypothesis import given
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.extract import Extractor


def _transport(n: int) -> bytes:
    return b"\x04\x00\x00\x00" + b"\xaa\xbb\xcc\xdd" + bytes(n - 8)


@pytest.mark.parametrize("n", [81, 109, 33, 47])
def test_an_unpadded_small_message_is_not_wireguard(n: int) -> None:
    assert Extractor(["wireguard"]).extract(_transport(n)) is None


@given(k=st.integers(0, 90))
def test_padded_messages_are(k: int) -> None:
    sid = Extractor(["wireguard"]).extract(_transport(32 + 16 * k))
    assert sid is not None and sid.value == b"\xaa\xbb\xcc\xdd"


@given(mtu=st.integers(576, 9000), short=st.integers(1, 15))
def test_a_message_cut_at_the_mtu_is(mtu: int, short: int) -> None:
    """Plaintext within 15 bytes of the MTU may stop short of a multiple of 16."""
    n = 32 + mtu - short
    assert wg.transport_size_ok(n, 576)
    assert Extractor(["wireguard"]).extract(_transport(n)) is not None


def test_min_mtu_is_an_option_with_a_range() -> None:
    """98 bytes (66 of plaintext, not a multiple of 16) is a message cut at a 68-byte MTU."""
    assert Extractor(["wireguard"]).extract(_transport(98)) is None
    assert Extractor(["wireguard"], {"min_mtu": 68}).extract(_transport(98)) is not None
    with pytest.raises(SidkitError, match="min_mtu"):
        Extractor(["wireguard"], {"min_mtu": 10})
