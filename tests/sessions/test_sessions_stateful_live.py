"""Random sequences of everything a server does to a session table, live against the model.

Each run draws a sequence of steps -- batches of datagrams (with a SID from a pool, a new
SID, or no SID at all), a new generation made working, a socket closing (with or without
the application removing it from its generation), pins, unpins, ends, a forced retirement
-- and applies it to the live table in a private namespace and to SessionTableModel sitting
on a reuseport Group model. Datagrams without a SID, and those whose pick finds nothing
selectable, are left to the kernel's hash: a first pass records ``ctx->hash`` for every
source the run uses, so the Group model predicts those too. Every datagram is compared,
then the counters and the kernel's table contents. The server and client are pinned to CPU
0 so the small LRU tables evict deterministically.
"""

from __future__ import annotations

import errno
import random
import time
from typing import Any

import pytest
from conftest import oracle_unavailable
from sessions.sessions_lab import pin_lab_to_one_cpu

from sidkit._errors import KernelOracleError
from sidkit.bpf import netns
from sidkit.bpf._syscall import bpf_available, socket_cookie
from sidkit.bpf.netns import CLIENT_V4, SERVER_V4, Datagram, Lab
from sidkit.kernel import LATEST, profile
from sidkit.reuseport import Group, HashRecorder
from sidkit.sessions import (
    SessionSpec,
    SessionTable,
    SessionTableModel,
    kernel_clock_ns,
    possible_cpus,
)
from sidkit.steering import FixedOffset, Guard, SteeringPolicy

pytestmark = pytest.mark.oracle

PORT = 4433
SPEC = SessionSpec("sid", SteeringPolicy(FixedOffset(1, 8, [Guard(0, 0x80, 0)]), "jhash", 4))


@pytest.fixture(autouse=True)
def _live() -> None:
    reason = netns.netns_available() or bpf_available()
    if reason:
        oracle_unavailable(f"live kernel: {reason}")


def _attach(table: SessionTable, sock: Any) -> None:
    for _ in range(50):  # EBUSY for ~20 ms after the recorder's detach (KERNEL-NOTES)
        try:
            table.attach(sock)
            return
        except KernelOracleError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.01)
    table.attach(sock)


def _run(lab: Lab, seed: int) -> dict[str, Any]:
    cpu = pin_lab_to_one_cpu()
    rng = random.Random(seed)
    sources = [(CLIENT_V4[i % 2], 10000 + i) for i in range(24)]
    socks: dict[int, Any] = {}
    group = Group(profile(LATEST))
    names = iter(range(1000))

    def bind(n: int) -> list[int]:
        out = []
        for s in netns.open_group(n, SERVER_V4, PORT):
            name = next(names)
            socks[name] = s
            group.join(name)
            out.append(name)
        return out

    first = bind(3)
    recorder = HashRecorder([socks[first[0]]])
    probe = [
        Datagram(a, p, SERVER_V4, PORT, bytes(4) + i.to_bytes(4, "big"))
        for i, (a, p) in enumerate(sources)
    ]
    lab.exchange(probe, list(socks.values()))
    hashes = {(d.src, d.sport): recorder.hash(i) for i, d in enumerate(probe)}
    recorder.close()
    cpus = possible_cpus()
    table = SessionTable(SPEC, capacity=12 * cpus, pinned_capacity=8 * cpus)
    model = SessionTableModel(
        SPEC, capacity=12 * cpus, pinned_capacity=8 * cpus, cpus=cpus, group=group
    )
    gens: dict[int, list[int]] = {}

    def add_generation(members: list[int]) -> None:
        gen = table.add_generation([socks[x] for x in members])
        assert model.add_generation(members) == gen
        gens[gen] = list(members)
        table.set_working(gen)
        model.set_working(gen)

    add_generation(first)
    _attach(table, socks[first[0]])
    sids = [rng.randbytes(8) for _ in range(30)]
    got: list[Any] = []
    predicted: list[Any] = []
    log: list[str] = []
    for _step in range(60):
        roll = rng.random()
        open_names = [x for x in socks if socks[x].fileno() >= 0]
        if roll < 0.55 or len(open_names) < 2:
            batch = []
            for _ in range(rng.randint(1, 6)):
                src = rng.choice(sources)
                kind = rng.random()
                if kind < 0.12:
                    payload = b"\x80" + rng.randbytes(12)  # no SID: the kernel's hash decides
                elif kind < 0.3:
                    payload = b"\x41" + rng.randbytes(8) + rng.randbytes(4)
                else:
                    payload = b"\x41" + rng.choice(sids) + rng.randbytes(4)
                batch.append(Datagram(src[0], src[1], SERVER_V4, PORT, payload))
            live = [x for x in socks if socks[x].fileno() >= 0]
            where = lab.exchange(batch, [socks[x] for x in live])
            got += [None if w is None else live[w] for w in where]
            now = kernel_clock_ns()
            for d in batch:
                predicted.append(
                    model.deliver(d.payload, now, cpu=cpu, hash=hashes[(d.src, d.sport)]).sock
                )
            log.append(f"send {len(batch)}")
        elif roll < 0.63 and len(gens) < 4:
            add_generation(bind(rng.randint(1, 3)))
            log.append("new generation")
        elif roll < 0.71:
            victim = rng.choice(open_names)
            cookie = socket_cookie(socks[victim])
            socks[victim].close()
            group.close(victim)
            model.close(victim)
            gen = next((g for g, m in gens.items() if victim in m), None)
            if gen is not None and rng.random() < 0.7 and len(gens[gen]) > 1:
                table.remove_socket(gen, cookie)
                model.remove_socket(gen, victim)
                gens[gen].remove(victim)
            log.append(f"close {victim}")
        elif roll < 0.82:
            keys = [k for k, _v, p in model.sessions() if not p]
            if keys:
                key = rng.choice(keys)
                now = kernel_clock_ns()
                table.pin(key, now_ns=now)
                model.pin(key, now, cpu=cpu)
                log.append("pin")
        elif roll < 0.9:
            keys = [k for k, _v, _p in model.sessions()]
            if keys:
                key = rng.choice(keys)
                assert table.end(key) == model.end(key)
                log.append("end")
        else:
            old = [g for g in gens if g != model.working]
            if old:
                gen = rng.choice(old)
                now = kernel_clock_ns()
                assert table.retire(gen, force=True, now_ns=now) == model.retire(
                    gen, now=now, force=True
                )
                gens.pop(gen)
                log.append(f"retire {gen}")
    kernel_keys = sorted((e.key, e.pinned) for e in table.sessions())
    model_keys = sorted((k, p) for k, _v, p in model.sessions())
    counters = table.counters()
    table.close()
    return {
        "got": got,
        "predicted": predicted,
        "kernel_keys": kernel_keys,
        "model_keys": model_keys,
        "counters": counters,
        "model_counters": model.counters,
        "log": log,
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_server_life_matches_the_model(seed: int) -> None:
    r = netns.run_in_lab(_run, seed)
    mismatch = [i for i, (g, p) in enumerate(zip(r["got"], r["predicted"], strict=True)) if g != p]
    assert not mismatch, (mismatch[:5], r["log"])
    assert None not in r["got"]
    assert r["kernel_keys"] == r["model_keys"]
    assert r["counters"] == r["model_counters"]
    c = r["counters"]
    assert c["no_key"] > 0 and c["hit"] > 0 and c["miss"] > 0
