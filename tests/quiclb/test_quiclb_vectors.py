"""QUIC-LB against published vectors that sidkit did not produce.

* draft-ietf-quic-load-balancers-21, Appendix B ("Load Balancer Test Vectors") and the
  encryption example of section 5.4.2.4, transcribed as printed from the draft's source
  (quicwg/load-balancers ``draft-ietf-quic-load-balancers.md``, the revision whose change log
  begins "since draft-ietf-quic-load-balancers-20"). Two rows of the table are misprinted;
  each erratum has its own test that shows the printed value, shows why it cannot be right,
  and checks what the algorithm defines instead.
* google/quiche ``quiche/quic/load_balancer/load_balancer_decoder_test.cc`` and
  ``load_balancer_encoder_test.cc`` (commit 04c5a3e09aef), which implement the draft <= 18
  expand() layout and cite draft-15's appendix.
* Envoy's quic_lb unit test (``test/extensions/quic/connection_id_generator/quic_lb/
  quic_lb_test.cc``, ``QuicLbTest.Unencrypted``) for the self-encoded first octet.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sidkit import quiclb
from sidkit.quiclb._cipher import FourPass, aes_ecb, expand_affixes

pytestmark = pytest.mark.oracle

H = bytes.fromhex

# --- draft-21 Appendix B, as printed -----------------------------------------------------------

DRAFT_KEY = H("8f95f09245765f80256934e50c66207f")
# (cr_bits, sid, nonce, cid) exactly as the draft prints them, hex strings.
DRAFT_UNENCRYPTED = [
    ("0", "c4605e", "4504cc4f", "07c4605e4504cc4f"),
    ("1", "350d28b420", "3487d970b", "20a350d28b4203487d970b"),  # erratum: see below
]
DRAFT_ENCRYPTED = [
    ("0", "ed793a", "ee080dbf", "0720b1d07b359d3c"),
    ("1", "ed793a51d49b8f5fab65", "ee080dbf48", "2fcc381bc74cb4fbad2823a3d1f8fed2"),
    ("2", "ed793a51d49b8f5f", "ee080dbf48c0d1e5", "504dd2d05a7b0de9b2b9907afb5ecf8cc3"),
    ("3", "ed793a51d49b8f5fab", "ee080dbf48c0d1e55d", "125779c9cc86beb3a3a4a3ca96fce4bfe0cdbc"),
]
CLEAN_ROWS = [(DRAFT_UNENCRYPTED[0], None)] + [(row, DRAFT_KEY) for row in DRAFT_ENCRYPTED[:3]]


@pytest.mark.parametrize(("row", "key"), CLEAN_ROWS, ids=["plain-0", "enc-0", "enc-1", "enc-2"])
def test_draft21_appendix_b_rows(row: tuple[str, str, str, str], key: bytes | None) -> None:
    cr, sid, nonce, cid = row
    config = quiclb.Config(int(cr), len(sid) // 2, len(nonce) // 2, key)
    assert quiclb.encode(config, H(sid), H(nonce)) == H(cid)
    assert quiclb.decode(config, H(cid)) == H(sid)
    parts = quiclb.unpack(config, H(cid))
    assert (parts.server_id, parts.nonce) == (H(sid), H(nonce))


def test_draft21_rows_cover_every_mode() -> None:
    # The table's own claim: a single-pass row, and a row needing the fourth decryption pass.
    modes_seen = {
        (c.mode, c.decode_aes_calls)
        for c in (
            quiclb.Config(int(cr), len(s) // 2, len(n) // 2, DRAFT_KEY)
            for cr, s, n, _ in DRAFT_ENCRYPTED
        )
    }
    assert ("single-pass", 1) in modes_seen
    assert ("four-pass", 4) in modes_seen
    assert ("four-pass", 3) in modes_seen


def test_erratum_encrypted_config_rotation_3_first_octet() -> None:
    """Appendix B.2, last row: cr_bits 3, but the CID's first octet is printed 0x12.

    0x12 = 0b000_10010 says config rotation 0 (and length 18). With rotation 3 the first octet
    is (3 << 5) | 18 = 0x72; the other 18 octets are right. (An earlier revision, with two
    config rotation bits, labelled the row cr_bits 0, which 0x12 fits; quiche's decoder test
    for these inputs uses 0x72 with config 3.)
    """
    cr, sid, nonce, printed = DRAFT_ENCRYPTED[3]
    printed_cid = H(printed)
    assert int(cr) == 3
    assert printed_cid[0] == 0x12
    assert printed_cid[0] >> 5 == 0  # the printed octet names config 0, not 3
    config = quiclb.Config(3, len(sid) // 2, len(nonce) // 2, DRAFT_KEY)
    ours = quiclb.encode(config, H(sid), H(nonce))
    assert ours[0] == 0x72 == (3 << 5) | (len(ours) - 1)
    assert ours[1:] == printed_cid[1:]
    assert quiclb.decode(config, ours) == H(sid)
    # The printed CID is refused by config 3 and decodes under config 0 with the same lengths.
    with pytest.raises(quiclb.CidError) as info:
        quiclb.decode(config, printed_cid)
    assert info.value.code == "cid-config-mismatch"
    config0 = quiclb.Config(0, len(sid) // 2, len(nonce) // 2, DRAFT_KEY)
    assert quiclb.decode(config0, printed_cid) == H(sid)


def test_erratum_unencrypted_second_row_nonce_has_nine_hex_digits() -> None:
    """Appendix B.1, second row: the nonce "3487d970b" has nine hex digits (4.5 octets).

    The printed CID is "20a" + sid + nonce: its first octet written with three digits. Read as
    octets it starts 0x20 (config 1, length 0) and no longer carries the server ID. A 5-octet
    server ID needs a 5-octet nonce for the length this row implies (10 octets after the first),
    so the first octet is (1 << 5) | 10 = 0x2a, whichever digit the nonce lost.
    """
    cr, sid, nonce, printed = DRAFT_UNENCRYPTED[1]
    assert len(nonce) == 9  # not a whole number of octets
    assert printed == "20a" + sid + nonce
    with pytest.raises(ValueError):
        H(nonce)
    printed_cid = H(printed)
    config = quiclb.Config(int(cr), len(sid) // 2, 5)
    assert printed_cid[0] == 0x20
    assert printed_cid[0] & 0x1F == 0  # says "no octets follow", yet 10 do
    assert quiclb.decode(config, printed_cid) != H(sid)
    for nonce5 in (H("0" + nonce), H(nonce + "0")):  # the lost digit in front, or at the end
        cid = quiclb.encode(config, H(sid), nonce5)
        assert cid[0] == 0x2A
        assert cid[1:6] == H(sid)
        assert quiclb.decode(config, cid) == H(sid)
    assert quiclb.encode(config, H(sid), H("0" + nonce)).hex() == "2a" + sid + "0" + nonce


# --- draft-21 section 5.4.2: expand() and the worked example ------------------------------------


def test_expand_example() -> None:
    # "expand(0x06, 0x02, 0xaaba3c) = 0xaaba3c00000000000000000000000602"
    affix = expand_affixes("draft-21", 0x06, 3)
    assert affix[2] + H("aaba3c") + affix[3] == H("aaba3c00000000000000000000000602")


EXAMPLE_KEY = H("fdf726a9893ec05c0632d3956680baf0")
# Section 5.4.2.4: (step, aes_input, aes_output) as printed.
EXAMPLE_PASSES = [
    (1, "31441a90", "31441a90000000000000000000000701", "a255dd8cdacf01948d3a848c3c7fee23"),
    (2, "0e3c1ff9", "0e3c1ff9000000000000000000000702", "e5e452cb9e1bedb0b2bf830506bf4c4e"),
    (3, "d4a04850", "d4a04850000000000000000000000703", "b7821ab3024fed0913b6a04d18e3216f"),
    (4, "09be054a", "09be054a000000000000000000000704", "b334357cfdf81e3fafe180154eaf7378"),
]


@pytest.mark.parametrize(("pass_", "half", "aes_input", "aes_output"), EXAMPLE_PASSES)
def test_encryption_example_aes_inputs(
    pass_: int, half: str, aes_input: str, aes_output: str
) -> None:
    # sidkit's expand() builds the printed AES input, and AES-128-ECB from `cryptography`
    # turns it into the printed output.
    affix = expand_affixes("draft-21", 7, 4)
    assert affix[2 * pass_ - 2] + H(half) + affix[2 * pass_ - 1] == H(aes_input)
    enc = Cipher(algorithms.AES(EXAMPLE_KEY), modes.ECB()).encryptor()
    assert enc.update(H(aes_input)) + enc.finalize() == H(aes_output)


def test_encryption_example_result() -> None:
    config = quiclb.Config(0, 3, 4, EXAMPLE_KEY)
    cid = quiclb.encode(config, H("31441a"), H("9c69c275"))
    assert cid == H("0767947d29be054a")
    assert quiclb.decode(config, cid) == H("31441a")
    assert quiclb.unpack(config, cid).nonce == H("9c69c275")


def test_erratum_example_step_10_xor_operand() -> None:
    """Step 10 prints ``left_2 = 0xd4a04850 ^ 0xb3e4357c = 0x67947d2c``; the truncated AES
    output it XORs is 0xb334357c (printed one line above). The result is right, the operand is
    misprinted."""
    truncated = int(EXAMPLE_PASSES[3][3][:8], 16)
    assert truncated == 0xB334357C
    assert 0xD4A04850 ^ truncated == 0x67947D2C
    assert 0xD4A04850 ^ 0xB3E4357C != 0x67947D2C


def test_erratum_decryption_pseudocode_clears_the_wrong_half() -> None:
    """Section 5.5.2's second decryption step reads ``right_1 = XOR(right_2, ...)`` then
    ``if (plaintext_len_is_odd()) clear_first_bits(left_1, 4)``. Taken literally it clears the
    high nibble of left_1 and leaves right_1's stray nibble in place; the odd-length vectors
    only decode when right_1 is cleared (as encryption steps 5 and 9 do)."""
    encrypt, _ = aes_ecb(EXAMPLE_KEY)
    four = FourPass(7, "draft-21", encrypt)
    ciphertext = H("67947d29be054a")
    assert four.decrypt(ciphertext) == H("31441a9c69c275")

    # The literal pseudocode, written out with sidkit's round function.
    half, rmask, lmask = 4, 0x0FFFFFFF, 0xFFFFFFF0
    left2, right2 = 0x67947D20, 0x09BE054A
    left1 = (left2 ^ four._round(4, right2)) & lmask
    right1 = right2 ^ four._round(3, left1)
    left1_literal = left1 & 0x0FFFFFFF  # clear_first_bits(left_1, 4)
    left0_literal = (left1_literal ^ four._round(2, right1)) & lmask
    left0 = (left1 ^ four._round(2, right1 & rmask)) & lmask
    assert left0.to_bytes(half, "big")[:3] == H("31441a")
    assert left0_literal.to_bytes(half, "big")[:3] != H("31441a")


# --- google/quiche, draft <= 18 expand() layout ------------------------------------------------

QUICHE_SERVER_ID = H("ed793a51d49b8f5fab65ba04c3330a")  # kServerId
# TestRandom's nonce: seed = uint128(kNonceHigh, kNonceLow) written little-endian.
QUICHE_NONCE = (0xE5D1C048BF0D08EE).to_bytes(8, "little") + (0x9321E7E34DDE525D).to_bytes(
    8, "little"
)
# DecoderTestVectors: (config_id, server_id_len, nonce_len, cid).
QUICHE_DECODER = [
    (0, 3, 4, "074126ee38bf5454"),
    (1, 10, 5, "2fcd3f572d4eefb046fdb51d164efccc"),
    (2, 8, 8, "504dd2d05a7b0de9b2b9907afb5ecf8cc3"),
    (3, 9, 9, "72124d1eb8fbb21e4a490ca53cfe21d04ae63a"),
]
# EncoderTestVectors: same inputs, the last one with config 0 (first octet 0x12).
QUICHE_ENCODER = [*QUICHE_DECODER[:3], (0, 9, 9, "12124d1eb8fbb21e4a490ca53cfe21d04ae63a")]


def test_quiche_nonce_matches_draft_nonce() -> None:
    # The draft's nonces are prefixes of quiche's test nonce: the two share their inputs.
    assert QUICHE_NONCE.hex().startswith("ee080dbf48c0d1e55d")


@pytest.mark.parametrize(("cr", "sid_len", "nonce_len", "cid"), QUICHE_DECODER)
def test_quiche_decoder_vectors(cr: int, sid_len: int, nonce_len: int, cid: str) -> None:
    config = quiclb.Config(cr, sid_len, nonce_len, DRAFT_KEY, expand_layout="draft-18")
    assert quiclb.decode(config, H(cid)) == QUICHE_SERVER_ID[:sid_len]


@pytest.mark.parametrize(("cr", "sid_len", "nonce_len", "cid"), QUICHE_ENCODER)
def test_quiche_encoder_vectors(cr: int, sid_len: int, nonce_len: int, cid: str) -> None:
    config = quiclb.Config(cr, sid_len, nonce_len, DRAFT_KEY, expand_layout="draft-18")
    out = quiclb.encode(config, QUICHE_SERVER_ID[:sid_len], QUICHE_NONCE[:nonce_len])
    assert out == H(cid)


def test_layouts_differ_except_single_pass() -> None:
    # The same inputs under the two layouts: four-pass CIDs differ, the single pass does not.
    for (cr, sid_len, nonce_len, quiche_cid), (_, _, _, draft_cid) in zip(
        QUICHE_ENCODER, DRAFT_ENCRYPTED, strict=True
    ):
        same = sid_len + nonce_len == 16
        assert (H(quiche_cid)[1:] == H(draft_cid)[1:]) is same, (cr, sid_len, nonce_len)


def test_quiche_follow_spec_example_draft15() -> None:
    # FollowSpecExample: the draft-15 worked example, nonce 0x75c2699c written little-endian.
    config = quiclb.Config(0, 3, 4, EXAMPLE_KEY, expand_layout="draft-18")
    nonce = (0x75C2699C).to_bytes(4, "little")
    assert quiclb.encode(config, H("31441a"), nonce) == H("078e9a91f4949762")


def test_quiche_run_out_of_nonces_vector() -> None:
    # RunOutOfNonces: seed 0xDEADBEEF (TestRandom's base value mod 2**32), two nonces left,
    # next nonce = seed + 2, little-endian.
    config = quiclb.Config(0, 3, 4, DRAFT_KEY, expand_layout="draft-18")
    nonce = (0xDEADBEEF + 2).to_bytes(4, "little")
    assert quiclb.encode(config, QUICHE_SERVER_ID[:3], nonce) == H("071d4ab8c61dd65d")


QUICHE_PLAINTEXT_DECODER = [
    (0, 3, 4, "07ed793a8049718a", "ed793a"),
    (1, 8, 5, "2ded793a51d49b8f5fee15da27c4", "ed793a51d49b8f5f"),
    (0, 3, 4, "0002030405060708", "020304"),  # NoServerIdEntry (length bits not checked)
    (0, 3, 4, "000102030405060708", "010203"),  # ConnectionIdTooLongIsOK
    (0, 3, 4, "00040506070809 0a", "040506"),  # TwoServerIds
]


@pytest.mark.parametrize(("cr", "sid_len", "nonce_len", "cid", "sid"), QUICHE_PLAINTEXT_DECODER)
def test_quiche_plaintext_decoder(
    cr: int, sid_len: int, nonce_len: int, cid: str, sid: str
) -> None:
    config = quiclb.Config(cr, sid_len, nonce_len)
    assert quiclb.decode(config, H(cid.replace(" ", ""))) == H(sid)


QUICHE_INVALID = [
    (1, "0001020304050607", "cid-config-mismatch"),  # InvalidConfigId
    (1, "e001020304050607", "cid-unroutable"),  # UnroutableCodepoint
    (1, "ff", "cid-unroutable"),  # UnroutableCodepointAnyLength
    (0, "00010203040506", "cid-too-short"),  # ConnectionIdTooShort
]


@pytest.mark.parametrize(("cr", "cid", "code"), QUICHE_INVALID)
def test_quiche_invalid_cids(cr: int, cid: str, code: str) -> None:
    config = quiclb.Config(cr, 3, 4)
    with pytest.raises(quiclb.CidError) as info:
        quiclb.decode(config, H(cid))
    assert info.value.code == code
    route = quiclb.classify_dcid([config], H(cid))
    assert not route.routable


def test_envoy_unencrypted_first_octet() -> None:
    # QuicLbTest.Unencrypted: server ID abcdef123456, 10-octet nonce, config version 0:
    # "expected[0] = 16; // Configured length of encoded portion of CID".
    config = quiclb.Config(0, 6, 10)
    cid = quiclb.encode(config, H("abcdef123456"), bytes(10))
    assert cid[:7] == bytes([16]) + H("abcdef123456")
