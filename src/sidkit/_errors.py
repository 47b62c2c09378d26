# One error model for the whole package (after h11's ProtocolError): every failure that a
# caller can cause raises a subclass of SidkitError. Where a caller would naturally catch a
# builtin (a wrong value -> ValueError, a wrong type -> TypeError) the sidkit error subclasses
# that builtin too, so ``except ValueError`` keeps working. Each error carries a
# machine-readable ``code`` so tools can branch on it without parsing the message.
"""The sidkit error hierarchy."""

from __future__ import annotations

__all__ = [
    "InputTypeError",
    "InputValueError",
    "KernelOracleError",
    "SidkitError",
    "UnknownKernelError",
    "VectorFileError",
]


class SidkitError(Exception):
    """Base class of every error sidkit raises on purpose.

    ``code`` is a short, stable, machine-readable name for the failure.
    """

    code: str = "sidkit-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InputValueError(SidkitError, ValueError):
    """An argument has the right type but an unusable value.

    Examples: a siphash key that is not 16 bytes, a negative integer where the kernel
    has a ``u32``, an address that does not parse.
    """

    code = "bad-value"


class InputTypeError(SidkitError, TypeError):
    """An argument has a type sidkit cannot use (for example ``str`` where bytes are needed)."""

    code = "bad-type"


class UnknownKernelError(InputValueError):
    """A kernel version or profile name that the eras table cannot place."""

    code = "unknown-kernel"


class VectorFileError(InputValueError):
    """A conformance vector file that does not match the schema or names an unknown function."""

    code = "bad-vector-file"


class KernelOracleError(SidkitError, OSError):
    """The live kernel refused an operation sidkit needed for an oracle check (bpf(2), netns)."""

    code = "kernel-refused"
