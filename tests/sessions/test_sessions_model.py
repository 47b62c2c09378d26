"""The session table's spec and model on their own: keys, limits, outcomes, generations.

These pin down the model's semantics where the live tests cannot reach cheaply (an empty
working generation, a pick out of range, pins and ends, refusals); the live tests then hold
the same model to the kernel datagram by datagram.
"""

from __future__ import annotations

import pytest

from sidkit import InputValueError
from sidkit.sessions import KEY_SIZE, SessionError, SessionSpec, SessionTableModel
from sidkit.steering import FixedOffset, IndexField, SteeringPolicy

SID8 = SteeringPolicy(FixedOffset(0, 8), "jhash", 4, seed=1)
SEC = 10**9


def test_the_key_is_length_pad_and_data() -> None:
    spec = SessionSpec("sid", SID8)
    key = spec.key_of(b"ABCDEFGH" + b"tail")
    assert key == b"\x08\x00\x00\x00ABCDEFGH" + bytes(12) and len(key) == KEY_SIZE
    assert spec.key_of(b"short") is None
    tup = SessionSpec("3-tuple").key_of(b"", ("10.0.0.1", 0x1234))
    assert tup == b"\x86\x00\x00\x00\x0a\x00\x00\x01\x12\x34" + bytes(14)
    v6 = SessionSpec("3-tuple").key_of(b"", ("fd00::1", 1))
    assert v6 is not None and v6[0] == 0x80 | 18


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "sid"}, "needs a steering policy"),
        ({"key": "bogus"}, "key must be"),
        ({"key": "sid", "policy": SID8, "record": "never"}, "record must be"),
        ({"key": "sid", "policy": SID8, "timeout_ns": 0}, "timeout_ns"),
        ({"key": "sid", "policy": SID8, "timeout_ns": 1.5}, "timeout_ns"),
        ({"key": "3-tuple", "seed": -1}, "seed"),
        (
            {"key": "sid", "policy": SteeringPolicy(FixedOffset(0, 21), "jhash", 4)},
            "at most 20 bytes",
        ),
    ],
)
def test_bad_specs_are_one_sidkit_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SessionError, match=message) as info:
        SessionSpec(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, InputValueError) and isinstance(info.value, ValueError)


def test_three_tuple_needs_the_source() -> None:
    with pytest.raises(SessionError, match="source address"):
        SessionSpec("3-tuple").key_of(b"x")


def _model(
    spec: SessionSpec | None = None, capacity: int = 4096, cpus: int = 1
) -> SessionTableModel:
    spec = spec or SessionSpec("sid", SID8, timeout_ns=10 * SEC)
    m = SessionTableModel(spec, capacity=capacity, cpus=cpus)
    m.set_working(m.add_generation(["a0", "a1", "a2", "a3"]))
    return m


def test_miss_records_then_hits_and_a_restart_keeps_it() -> None:
    m = _model()
    first = m.deliver(b"S" * 8, 0)
    assert first.outcome == "miss" and first.sock in {"a0", "a1", "a2", "a3"}
    m.set_working(m.add_generation(["b0", "b1"]))
    again = m.deliver(b"S" * 8, 5 * SEC)
    assert (again.outcome, again.sock) == ("hit", first.sock)
    new = m.deliver(b"T" * 8, 5 * SEC)
    assert new.outcome == "miss" and new.sock in {"b0", "b1"}


def test_expiry_and_stale_pick_anew_in_place() -> None:
    m = _model()
    m.deliver(b"S" * 8, 0)
    gen1 = m.add_generation(["b0", "b1"])
    m.set_working(gen1)
    late = m.deliver(b"S" * 8, 11 * SEC)
    assert late.outcome == "expired" and late.sock in {"b0", "b1"}
    m.close(late.sock)
    # still in the working pick list, the dead socket is picked again: nothing selected
    assert m.deliver(b"S" * 8, 12 * SEC).outcome == "select_failed"
    m.remove_socket(gen1, late.sock)  # what the application does after the crash
    stale = m.deliver(b"S" * 8, 12 * SEC)
    assert stale.outcome == "stale" and stale.sock == ({"b0", "b1"} - {late.sock}).pop()
    assert m.counters["expired"] == 1 and m.counters["stale"] == 2
    assert m.counters["select_failed"] == 1


def test_an_empty_or_dead_pick_leaves_it_to_the_kernels_hash() -> None:
    m = SessionTableModel(SessionSpec("sid", SID8))
    assert m.deliver(b"S" * 8, 0).outcome == "pick_failed"  # no working generation yet
    m.set_working(m.add_generation(["only"]))
    m.close("only")
    d = m.deliver(b"S" * 8, 0)
    assert (d.outcome, d.sock) == ("select_failed", None)
    index = SteeringPolicy(FixedOffset(0, 8), "index", 4, field=IndexField(0, 1, 0, 0xFF))
    m2 = _model(SessionSpec("sid", index))
    assert m2.deliver(b"\x07" + b"x" * 7, 0).outcome == "pick_failed"  # 7 >= 4 sockets
    assert m2.deliver(b"\x02" + b"x" * 7, 0).sock == "a2"


def test_drain_retire_pin_and_end() -> None:
    m = _model()
    gen0 = m.working
    spec = m.spec
    keys = [spec.key_of(bytes([i]) * 8) for i in range(5)]
    for i in range(5):
        m.deliver(bytes([i]) * 8, 0)
    m.set_working(m.add_generation(["b0"]))
    assert len(m.draining(gen0, SEC)) == 5
    with pytest.raises(SessionError, match="still on generation"):
        m.retire(gen0, now=SEC)
    with pytest.raises(SessionError, match="working one"):
        m.retire(m.working, now=SEC)
    assert keys[0] is not None and keys[1] is not None
    m.pin(keys[0], SEC)
    assert m.pinned.peek(keys[0]) is not None and m.recent.peek(keys[0]) is None
    assert m.deliver(bytes([0]) * 8, 2 * SEC).pinned
    assert m.end(keys[1]) and not m.end(keys[1])
    assert len(m.draining(gen0, 2 * SEC)) == 4
    assert m.retire(gen0, now=2 * SEC, force=True) == 4
    assert m.deliver(bytes([2]) * 8, 3 * SEC).sock == "b0"  # forgotten: a new pick


def test_record_on_assure_records_nothing() -> None:
    m = _model(SessionSpec("sid", SID8, record="assure"))
    for i in range(50):
        assert m.deliver(bytes([i]) * 8, 0).outcome == "miss"
    assert len(m.recent) == 0 and m.counters["recorded"] == 0


def test_a_full_recent_table_evicts_in_batches() -> None:
    m = _model(capacity=8, cpus=1)
    evicted = [m.deliver(bytes([i]) * 8, 0, cpu=0).evicted for i in range(9)]
    assert [len(e) for e in evicted] == [0] * 8 + [4]
    assert m.recent.evictions == 4


def test_stateless_dissectors_need_the_kernels_hash() -> None:
    m = _model(SessionSpec("none"))
    with pytest.raises(SessionError, match="hash="):
        m.deliver(b"anything", 0)
    assert m.deliver(b"anything", 0, hash=0xC000_0000).sock == "a3"
