"""The flow analyzer pauses the cyclic garbage collector while it reads and reports
(sidkit.flows._analyzer.gc_paused): the pause must end as it began -- collection on again
only if it was on, also after an error and when analyses in several threads overlap -- and
it is only safe because reading makes no cyclic garbage and the analyzer holds no cycle
(dropping it frees it by reference counting), which these tests check on every capture the
tests have (and the capture corpus where it was fetched), on both paths, and on the
benchmark's handshake-heavy captures."""

from __future__ import annotations

import gc
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.modules import bench_flows

from sidkit.flows import FlowAnalyzer, NotACaptureError, analyze
from sidkit.flows._analyzer import gc_paused
from sidkit.flows._read import read_into

ROOT = Path(__file__).parents[2]


@pytest.fixture
def gc_restored() -> Iterator[None]:
    """Whatever a test does to the collector, the next one finds it on."""
    try:
        yield
    finally:
        gc.enable()


def _bench() -> Any:
    return bench_flows()


@pytest.mark.usefixtures("gc_restored")
@pytest.mark.parametrize("enabled", [True, False])
def test_the_pause_restores_what_it_found(enabled: bool) -> None:
    if enabled:
        gc.enable()
    else:
        gc.disable()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still under way
    assert gc.isenabled() is enabled
    with pytest.raises(ZeroDivisionError), gc_paused():
        1 // 0  # noqa: B018 - an error inside the pause
    assert gc.isenabled() is enabled


@pytest.mark.usefixtures("gc_restored")
def test_overlapping_pauses_in_threads_end_with_the_last() -> None:
    gc.enable()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with gc_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with gc_paused():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())  # the first pause ended, this one has not

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False]
    assert gc.isenabled()


@pytest.mark.usefixtures("gc_restored")
@pytest.mark.parametrize("enabled", [True, False])
def test_analyze_leaves_the_collector_as_it_found_it(tmp_path: Path, enabled: bool) -> None:
    if enabled:
        gc.enable()
    else:
        gc.disable()
    report = analyze(ROOT / "tests" / "data" / "quic-v1-migration.pcap")
    assert report.flows
    assert gc.isenabled() is enabled
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all, just text" * 4)
    with pytest.raises(NotACaptureError):
        analyze(junk)
    assert gc.isenabled() is enabled


@pytest.mark.usefixtures("gc_restored")
def test_the_pause_leaves_nothing_frozen_and_keeps_what_the_program_froze() -> None:
    """The pause ends by moving the survivors into the oldest generation through
    gc.freeze() + gc.unfreeze(): nothing may stay frozen, and objects the program froze
    itself must stay frozen (then the move is skipped)."""
    gc.enable()
    assert gc.get_freeze_count() == 0  # no test freezes objects and leaves them so
    analyze(ROOT / "tests" / "data" / "quic-v1-migration.pcap")
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    kept = [[i] for i in range(100)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        report = analyze(ROOT / "tests" / "data" / "quic-v1-migration.pcap")
        assert report.flows
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def _captures() -> list[tuple[str, bytes]]:
    paths = sorted(
        {
            *(ROOT / "tests").glob("**/*.pcap"),
            *(ROOT / "tests").glob("**/*.pcapng"),
            *(ROOT / "conformance" / "captures" / "_work").glob("**/*.pcap*"),
        }
    )
    return [(p.name, p.read_bytes()) for p in paths if p.is_file()]


def _garbage(data: bytes, fast: bool, **kwargs: Any) -> tuple[int, int]:
    """Objects in reference cycles that became garbage while *data* was read and reported
    (the analyzer and its report still alive), and then when the analyzer was dropped: a
    flow's counters name it by index, so that nothing it holds is a cycle and dropping it
    frees it without the cyclic collector."""
    analyze(ROOT / "tests" / "data" / "quic-v2.pcap")  # plugins loaded: their import garbage
    analyzer = FlowAnalyzer(fast=fast, **kwargs)
    gc.collect()
    gc.disable()
    try:
        read_into(analyzer, io.BytesIO(data), "capture", None, None)
        report = analyzer.report()
        while_alive = gc.collect()
        del analyzer
        after = gc.collect()
    finally:
        gc.enable()
    assert report.summary.frames > 0
    return while_alive, after


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("by", ["sid", "tuple"])
def test_reading_makes_no_cyclic_garbage_and_the_analyzer_none(fast: bool, by: str) -> None:
    captures = _captures()
    assert len(captures) >= 4  # the committed ones at least
    for name, data in captures:
        try:
            found = _garbage(data, fast, by=by)
        except NotACaptureError:
            continue
        assert found == (0, 0), name


@pytest.mark.parametrize("fast", [True, False])
def test_the_handshake_heavy_benchmark_capture_makes_no_cyclic_garbage(
    tmp_path: Path, fast: bool
) -> None:
    bench = _bench()
    path = tmp_path / "bench.pcap"
    bench.make_capture(path, 4000, connections=50, zero_cids=0.3, lifetime=10)
    assert _garbage(path.read_bytes(), fast) == (0, 0)
