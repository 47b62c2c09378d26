# Issue 18: every number that reaches a steering program is range-checked where it enters.
# Both programs carry payload offsets as 32-bit immediates that wrap silently, so an offset of
# 2**32 compiled to "offset 0" while the model said "no SID": the kernel then spread one
# session over every socket. These tests hold the boundary: refused above it, and at it the
# model and both program interpreters still agree.
from __future__ import annotations

import pytest

from sidkit import InputTypeError, SidkitError
from sidkit.bpf import cbpf, ebpf
from sidkit.steering import (
    FixedOffset,
    Guard,
    SteeringError,
    SteeringPolicy,
    compile_cbpf,
    compile_ebpf,
)
from sidkit.steering._policy import MAX_OFFSET

HUGE = 16**5000


@pytest.mark.parametrize(
    "make",
    [
        lambda: FixedOffset(2**32, 4),
        lambda: FixedOffset(MAX_OFFSET + 1, 4),
        lambda: FixedOffset(0, 4, min_size=2**32),
        lambda: FixedOffset(0, 4, [(2**32, 0xFF, 1)]),
        lambda: Guard(MAX_OFFSET + 1, 0xFF, 0),
        lambda: FixedOffset(HUGE, 4),
        lambda: FixedOffset(0, HUGE),
        lambda: FixedOffset(-1, 4),
    ],
)
def test_offsets_a_program_cannot_carry_are_refused(make: object) -> None:
    with pytest.raises(SteeringError) as info:
        make()  # type: ignore[operator]
    assert "\n" not in str(info.value)


def test_the_issue_example_is_refused_with_its_reason() -> None:
    with pytest.raises(SteeringError, match=r"offset must be an integer 0\.\.65535"):
        SteeringPolicy(FixedOffset(2**32, 4), "modulo", 4)


@pytest.mark.parametrize("guards", [[(0, 1)], ["x"], 5, "abc", [(0, 1, 2, 3)], [None]])
def test_malformed_guards_are_sidkit_errors(guards: object) -> None:
    with pytest.raises(SteeringError, match="guard"):
        FixedOffset(0, 4, guards=guards)  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [12, "str", None, 1.5, [1, 2]])
def test_select_takes_bytes_only(payload: object) -> None:
    # bytes(12) would be twelve zero bytes: an int must not be read as a payload.
    policy = SteeringPolicy(FixedOffset(0, 4), "modulo", 4)
    with pytest.raises(InputTypeError, match="payload must be bytes"):
        policy.select(payload)  # type: ignore[arg-type]


def test_select_accepts_every_bytes_like() -> None:
    policy = SteeringPolicy(FixedOffset(0, 4), "modulo", 4)
    data = bytes([0, 0, 0, 7])
    assert policy.select(data) == policy.select(bytearray(data)) == policy.select(memoryview(data))
    assert policy.select(data) == 3


@pytest.mark.parametrize("method", ["modulo", "jhash"])
def test_at_the_largest_offset_model_and_both_programs_agree(method: str) -> None:
    offset = MAX_OFFSET - 8
    policy = SteeringPolicy(FixedOffset(offset, 4, [(offset + 4, 0xFF, 0x5A)]), method, 5)  # type: ignore[arg-type]
    program = compile_cbpf(policy)
    insns = compile_ebpf(policy, map_fd=7)
    body = bytearray(b"\x01" * (offset + 5))
    body[offset : offset + 5] = bytes([0, 0, 1, 3, 0x5A])
    for payload in (bytes(body), bytes(body[:-1]), bytes(body[:-1]) + b"\x00", b"short"):
        expected = policy.select(payload)
        got = cbpf.run(program, payload)
        assert (got if got < policy.n else None) == expected
        verdict, selected = ebpf.run_sk_reuseport(insns, ebpf.ReuseportContext(bytes(8) + payload))
        assert verdict == ebpf.SK_PASS
        assert selected == expected
    assert policy.select(bytes(body)) is not None


def test_errors_stay_sidkit_errors_for_huge_numbers_everywhere_in_a_policy() -> None:
    for make in (
        lambda: SteeringPolicy(FixedOffset(0, 4), "modulo", HUGE),
        lambda: SteeringPolicy(FixedOffset(0, 4), "jhash", 4, seed=HUGE),
        lambda: Guard(0, HUGE, 0),
    ):
        with pytest.raises(SidkitError) as info:
            make()
        assert "bits" in str(info.value)


@pytest.mark.parametrize(
    "map_fd",
    [2**32, 2**31, -1, "3", 1.0, True, HUGE],
    ids=["2^32", "2^31", "-1", "str", "float", "bool", "16^5000"],
)
def test_a_map_fd_the_program_cannot_carry_is_refused(map_fd: object) -> None:
    # ld_imm64 with BPF_PSEUDO_MAP_FD carries the fd in a 32-bit immediate
    policy = SteeringPolicy(FixedOffset(0, 4), "modulo", 4)
    with pytest.raises(SteeringError, match="map_fd"):
        compile_ebpf(policy, map_fd)  # type: ignore[arg-type]


def test_compilers_refuse_what_is_not_a_policy() -> None:
    with pytest.raises(SteeringError, match="SteeringPolicy"):
        compile_cbpf(FixedOffset(0, 4))  # type: ignore[arg-type]
    with pytest.raises(SteeringError, match="on_no_sid"):
        compile_ebpf(SteeringPolicy(FixedOffset(0, 4)), 3, on_no_sid="reject")  # type: ignore[arg-type]
