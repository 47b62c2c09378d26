"""Shared test helpers.

Oracle tests compare sidkit with something sidkit did not produce (the kernel's own C, the
live kernel, published vectors). On a machine that lacks the oracle they skip with a reason;
with ``SIDKIT_REQUIRE_ORACLES=1`` (set by ``.ci/run``) that skip becomes a failure, so CI can
never pass without having consulted every oracle.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def oracles_required() -> bool:
    """True when a missing oracle must fail the run instead of skipping."""
    return os.environ.get("SIDKIT_REQUIRE_ORACLES", "") not in ("", "0")


def oracle_unavailable(reason: str) -> NoReturn:
    """Skip (or, under SIDKIT_REQUIRE_ORACLES=1, fail) because an oracle is missing."""
    if oracles_required():
        pytest.fail(f"oracle required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"oracle unavailable: {reason} (set SIDKIT_REQUIRE_ORACLES=1 to fail instead)")
