# Strategy: the kernel draws its hash secrets at random -- once per boot (nf_conntrack_hash_rnd,
# udp_ehash_secret, udp_ipv6_hash_secret, hashrnd) or once per network namespace
# (net->hash_mix, which net_hash_mix() returns) -- so that nobody who cannot read them can aim
# tuples at one conntrack chain or one socket. sidkit's models do what the kernel does: a
# secret nobody passes is drawn from the operating system's generator, and a seed makes a
# run reproducible. This is the one place that turns a seed into the generator the secrets
# come from, so every model (conntrack.Table, reuseport.Group and Port) derives them alike.
"""Where the models' kernel secrets come from: random by default, seedable (private)."""

from __future__ import annotations

import random

from sidkit._errors import InputTypeError

__all__ = ["Seed", "secret_source"]

Seed = int | random.Random | None
"""A seed as the models take it: None (the operating system's randomness, as the kernel's
``get_random_bytes``), an int (a reproducible run), or a :class:`random.Random` to draw from."""


def secret_source(seed: object, purpose: str) -> random.Random:
    """The generator a model draws its secrets from.

    None: :class:`random.SystemRandom` (``os.urandom``), like the kernel's per-boot draw. An
    int: a :class:`random.Random` seeded by *purpose* and the int, so that two models given
    one seed for different purposes do not share secrets, and one model given the same seed
    twice draws the same ones. A :class:`random.Random`: that generator itself (the secrets
    are the next values it gives)."""
    if not isinstance(purpose, str):
        raise InputTypeError(f"purpose must be a str, not {type(purpose).__name__}", code="not-str")
    if seed is None:
        return random.SystemRandom()
    if isinstance(seed, random.Random):
        return seed
    if isinstance(seed, int) and not isinstance(seed, bool):
        # bytes, not an f-string: a seed past Python's int-to-str limit must still work
        size = (seed.bit_length() + 8) // 8
        return random.Random(
            f"sidkit {purpose} ".encode() + seed.to_bytes(size, "big", signed=True)
        )
    raise InputTypeError(
        f"seed must be an int, a random.Random or None, not {type(seed).__name__}",
        code="bad-seed",
    )
