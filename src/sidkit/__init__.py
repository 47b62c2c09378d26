# Public surface: the error hierarchy at the top level (so ``except sidkit.SidkitError``
# works everywhere), everything else in named modules: sidkit.hashing (kernel arithmetic),
# sidkit.kernel (eras and profiles), sidkit.conformance (oracle vectors).
"""sidkit: how Linux identifies a UDP flow and which socket gets it, exactly.

Kernel-identical hashes for every era (:mod:`sidkit.hashing`, :mod:`sidkit.kernel`), checked
against oracles sidkit did not write (:mod:`sidkit.conformance`).
"""

from __future__ import annotations

from sidkit._errors import (
    InputTypeError,
    InputValueError,
    KernelOracleError,
    SidkitError,
    UnknownKernelError,
    VectorFileError,
)

__version__ = "0.1.0"

__all__ = [
    "InputTypeError",
    "InputValueError",
    "KernelOracleError",
    "SidkitError",
    "UnknownKernelError",
    "VectorFileError",
    "__version__",
]
