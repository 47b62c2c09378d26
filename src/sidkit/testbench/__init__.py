# Strategy: a test bench for anyone's reuseport program. Loaders (_elf, _text) turn an object,
# a C array or a classic listing into one Program value; the bench (_bench) runs it on a live
# group in throw-away namespaces and records every delivery; models and the report (_check)
# say whether the program did what a sidkit model predicts; _feed brings datagrams from
# captures; _vectors runs the steering conformance vectors through a program. The family sits
# above flows (captures) and quiclb/steering (models), below the CLI.
"""Load a third-party reuseport program, feed it datagrams on a live group, check it."""

from __future__ import annotations

from sidkit.testbench._bench import (
    DEFAULT_PORT,
    Delivery,
    Family,
    Feed,
    Fill,
    Probe,
    SocketInfo,
    deliver,
)
from sidkit.testbench._check import (
    DROP,
    Model,
    ModelContext,
    Outcome,
    Report,
    Row,
    check,
    default_model,
    envoy_model,
    katran_model,
    model_from_spec,
    nginx_model,
    policy_model,
    quiclb_model,
)
from sidkit.testbench._load import from_cbpf, from_insns, load_program
from sidkit.testbench._program import Kind, MapSpec, Program, Reloc, TestbenchError

__all__ = [
    "DEFAULT_PORT",
    "DROP",
    "Delivery",
    "Family",
    "Feed",
    "Fill",
    "Kind",
    "MapSpec",
    "Model",
    "ModelContext",
    "Outcome",
    "Probe",
    "Program",
    "Reloc",
    "Report",
    "Row",
    "SocketInfo",
    "TestbenchError",
    "check",
    "default_model",
    "deliver",
    "envoy_model",
    "from_cbpf",
    "from_insns",
    "katran_model",
    "load_program",
    "model_from_spec",
    "nginx_model",
    "policy_model",
    "quiclb_model",
]
