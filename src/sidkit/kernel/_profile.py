# Strategy: a profile is the question "which kernel, on which host" answered once; it
# resolves a function name through the eras table (sidkit.kernel._eras) to the callable in
# force and binds the host traits that callable takes (byte order, BITS_PER_LONG, the era's
# own word hashes for composites). Nothing else in sidkit branches on version numbers.
"""Kernel profiles: a version plus host traits, resolving functions through the eras table."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import attrs

from sidkit._errors import InputValueError, UnknownKernelError
from sidkit._validate import check_byteorder, check_int, show
from sidkit.hashing import _jhash
from sidkit.kernel._eras import _BY_FUNCTION, ABSENT, Era
from sidkit.kernel._version import FIRST, LATEST, KernelVersion


@attrs.frozen
class KernelProfile:
    """A kernel version plus the host traits that change hash results.

    ``byteorder`` matters wherever the kernel reinterprets network-order bytes as a host
    integer (``(__force u32)addr``); ``bits_per_long`` selects ``hsiphash``'s and
    ``hash_64``'s 32-bit forms.
    """

    version: KernelVersion = LATEST
    byteorder: str = attrs.field(default="little")
    bits_per_long: int = attrs.field(default=64)

    @byteorder.validator
    def _bo(self, _a: object, value: str) -> None:
        if value not in ("little", "big"):
            raise UnknownKernelError(f"byteorder must be 'little' or 'big', got {value!r}")

    @bits_per_long.validator
    def _bpl(self, _a: object, value: int) -> None:
        if value not in (32, 64):
            raise UnknownKernelError(f"bits_per_long must be 32 or 64, got {value!r}")

    def era(self, function: str) -> Era:
        """The eras-table row in force for *function* in this kernel."""
        rows = _BY_FUNCTION.get(function)
        if rows is None:
            raise UnknownKernelError(
                f"no kernel function {function!r} in the eras table "
                f"(known: {', '.join(sorted(_BY_FUNCTION))})"
            )
        found = None
        for row in rows:
            if row.applies_to(self.version):
                found = row
        if found is None:
            raise UnknownKernelError(
                f"{function} does not exist in kernel {self.version} "
                f"(modelled from {rows[0].since})"
            )
        return found

    def function(self, name: str) -> Callable[..., Any]:
        """The callable for kernel function *name* in this era, bound to the host traits."""
        era = self.era(name)
        impl = era.impl
        if impl is None:
            what = "does not exist in" if era.variant == ABSENT else "is not modelled for"
            raise UnknownKernelError(f"{name} {what} kernel {self.version}: {era.evidence}")
        params = inspect.signature(impl).parameters
        bound: dict[str, object] = {}
        if "byteorder" in params:
            bound["byteorder"] = self.byteorder
        if "bits_per_long" in params:
            bound["bits_per_long"] = self.bits_per_long
        if "xorfold" in params:
            bound["xorfold"] = self.era("ipv6_addr_jhash").variant == "xor-fold"
        if "word_hashes" in params:
            # Composites (ehash, port-address, conntrack) hash with their own era's jhash.
            bound["word_hashes"] = _jhash.WordHashes(
                self.function("jhash2"), self.function("jhash_3words"), self.function("jhash_1word")
            )
        return functools.partial(impl, **bound) if bound else impl

    def __str__(self) -> str:
        return f"Linux {self.version} ({self.byteorder}-endian, {self.bits_per_long}-bit)"


@functools.lru_cache(maxsize=64)
def _cached(version: KernelVersion, byteorder: str, bits_per_long: int) -> KernelProfile:
    return KernelProfile(version, byteorder, bits_per_long)


def profile(
    kernel: str | KernelVersion | KernelProfile | None = None,
    *,
    byteorder: str = "little",
    bits_per_long: int = 64,
) -> KernelProfile:
    """Return the profile for *kernel* (a version string, a version, a profile, or None for
    :data:`~sidkit.kernel.LATEST`)."""
    if isinstance(kernel, KernelProfile):
        return kernel
    byteorder = check_byteorder(byteorder)
    if check_int(bits_per_long, 32, 64, "bits_per_long") not in (32, 64):
        raise InputValueError(
            f"bits_per_long={show(bits_per_long)} must be 32 or 64", code="out-of-range"
        )
    version = LATEST if kernel is None else KernelVersion.parse(kernel)
    if version < FIRST:
        raise UnknownKernelError(f"kernel {version} predates the modelled range ({FIRST}+)")
    return _cached(version, byteorder, bits_per_long)
