"""The steering vector files: valid against their schema, consistent with the policy they
state and with the rule of the oracle they name, and malformed files refused in one line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import jsonschema
import pytest

from sidkit.testbench import TestbenchError
from sidkit.testbench._vectors import load_steering_vectors

ROOT = Path(__file__).resolve().parents[2]
STEERING = ROOT / "conformance" / "vectors" / "steering"
SCHEMA = json.loads(
    (ROOT / "conformance" / "testbench" / "steering_vectors.schema.json").read_text()
)


def test_files_match_the_schema() -> None:
    files = sorted(STEERING.glob("*.json"))
    assert files
    for f in files:
        doc = json.loads(f.read_text())
        jsonschema.validate(doc, SCHEMA)
        assert doc["numberOfTests"] == sum(len(g["tests"]) for g in doc["testGroups"])


def test_reuseport_bpf_vectors_state_the_selftests_rule() -> None:
    """test_recv_order: payload htonl(data) from port send_port_min + data, socket
    sport % mod -- and the policy each group names gives the same socket."""
    groups = [g for g in load_steering_vectors(STEERING) if g.file == "steering-reuseport_bpf.json"]
    assert [dict(g.defines)["mod"] for g in groups] == [10, 5]
    for g in groups:
        mod = dict(g.defines)["mod"]
        for _tc, payload, sport, outcome in g.cases:
            (data,) = struct.unpack("!I", payload)
            assert outcome == sport % mod == data % mod == g.policy.select(payload)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"algorithm": "jhash"}, "not a steering vector file"),
        ({"algorithm": "steering", "testGroups": [{}]}, "malformed steering vector file"),
        (
            {
                "algorithm": "steering",
                "testGroups": [
                    {
                        "source": {"name": "x"},
                        "sockets": 2,
                        "policy": {"offset": 0, "length": 4, "method": "modulo", "n": 2},
                        "tests": [{"tcId": 1, "payload": "00", "result": "elsewhere"}],
                    }
                ],
            },
            "result must be a socket index",
        ),
        (
            {
                "algorithm": "steering",
                "testGroups": [
                    {
                        "source": {"name": "x"},
                        "sockets": 2,
                        "policy": {"offset": 0, "length": 4, "method": "nope", "n": 2},
                        "tests": [],
                    }
                ],
            },
            "method must be one of",
        ),
    ],
)
def test_malformed_files_are_one_line_errors(tmp_path: Path, doc: object, message: str) -> None:
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(TestbenchError, match=message) as info:
        list(load_steering_vectors(tmp_path))
    assert "\n" not in str(info.value)
