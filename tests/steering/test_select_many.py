# Issue 17 (use the batch hashes where sidkit does bulk work): SteeringPolicy.select_many is
# the bulk form of select(). Its oracle here is select() itself, looped -- select() is in
# turn held to the compiled programs and the live kernel by tests/steering/test_steering.py.
# The property draws every method the policy supports, AnyOf locations of mixed SID lengths
# (so the by-length grouping is exercised), guards, and payloads that carry no SID.
from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidkit import SidkitError
from sidkit.steering import AnyOf, FixedOffset, IndexField, SteeringPolicy

pytest.importorskip("numpy", reason="select_many needs numpy (sidkit[bulk])")


@st.composite
def policies(draw: st.DrawFn) -> SteeringPolicy:
    method = draw(st.sampled_from(["jhash", "modulo", "index"]))
    field = IndexField()
    low = 1
    if method == "index":
        length = draw(st.integers(1, 4))
        shift = draw(st.integers(0, 8 * length - 1))
        mask = draw(st.integers(1, (1 << 32) - 1))
        field = IndexField(
            offset=draw(st.integers(0, 3)),
            length=length,
            shift=shift,
            mask=mask,
            base=draw(st.integers(0, min(mask, 3))),
        )
        low = field.offset + field.length
    locations = [
        FixedOffset(
            draw(st.integers(0, 6)),
            draw(st.integers(low, 20)),
            guards=draw(
                st.lists(
                    st.tuples(st.integers(0, 3), st.integers(0, 255), st.integers(0, 255)).map(
                        lambda g: (g[0], g[1], g[2] & g[1])
                    ),
                    max_size=1,
                )
            ),
        )
        for _ in range(draw(st.integers(1, 3)))
    ]
    return SteeringPolicy(
        AnyOf(locations),
        method,  # type: ignore[arg-type]
        draw(st.integers(1, 300)),
        seed=draw(st.integers(0, (1 << 32) - 1)),
        field=field,
    )


@settings(max_examples=300, deadline=None, database=None)
@given(policies(), st.lists(st.binary(max_size=40), max_size=60))
def test_select_many_is_a_loop_of_select(policy: SteeringPolicy, payloads: list[bytes]) -> None:
    expected = [policy.select(p) for p in payloads]
    assert policy.select_many(payloads) == expected
    # bytearray/memoryview and a generator are taken as select() takes them
    assert policy.select_many(memoryview(p) for p in payloads) == expected


def test_select_many_answers_none_for_payloads_without_a_sid() -> None:
    policy = SteeringPolicy(FixedOffset(1, 8, guards=[(0, 0x80, 0)]), "jhash", 4, seed=9)
    picked = policy.select_many([b"\x80" + bytes(8), b"\x00" * 3, b"\x00" + bytes(range(8))])
    assert picked[:2] == [None, None]
    assert picked[2] == policy.select(b"\x00" + bytes(range(8)))
    assert picked[2] is not None


@pytest.mark.parametrize("bad", [12, "payload", [b"ok", "x"], [None]])
def test_select_many_refuses_what_select_refuses(bad: object) -> None:
    policy = SteeringPolicy(FixedOffset(0, 4), "modulo", 4)
    with pytest.raises(SidkitError):
        policy.select_many(bad)  # type: ignore[arg-type]


def test_without_numpy_select_many_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import sidkit\n"
        "from sidkit.steering import FixedOffset, SteeringPolicy\n"
        "policy = SteeringPolicy(FixedOffset(0, 4), 'jhash', 4)\n"
        "print(policy.select(bytes(4)))\n"
        "try:\n"
        "    policy.select_many([bytes(4)])\n"
        "except sidkit.SidkitError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'sidkit[bulk]'" in out.stdout, out.stdout + out.stderr
