# Strategy: the vector files under conformance/vectors are the project's truth; each test group
# names the oracle that produced it (kernel C, published tables, Wireshark, the live kernel),
# never sidkit. This package reads them and runs them against the library (_vectors), against
# the running kernel where it exposes the function (_live), and writes them out for other
# people's code as JSON, C tables or a KUnit suite (_emit, behind ``sidkit vectors emit``).
"""Load conformance vector files and check sidkit (and the live kernel) against them."""

from __future__ import annotations

from sidkit.conformance._live import LIVE_ORACLES, LiveResult, run_group_live
from sidkit.conformance._vectors import (
    Failure,
    TestCase,
    TestGroup,
    VectorFile,
    decode_args,
    group_applies_to,
    iter_vector_files,
    load_vector_file,
    run_group,
    same_algorithm,
    select_groups,
)

__all__ = [
    "LIVE_ORACLES",
    "Failure",
    "LiveResult",
    "TestCase",
    "TestGroup",
    "VectorFile",
    "decode_args",
    "group_applies_to",
    "iter_vector_files",
    "load_vector_file",
    "run_group",
    "run_group_live",
    "same_algorithm",
    "select_groups",
]
