# Strategy: a kernel release as an ordered value. Era boundaries are named by the first
# mainline release of a form, and stable backports by the first release of their branch, so
# the value keeps three numbers and parses what people type (``6.12``, ``v4.19``, ``uname -r``
# output with a distribution suffix). It refuses versions outside the modelled range rather
# than answering for kernels nobody checked.
"""Kernel versions and the modelled range."""

from __future__ import annotations

import functools
import re

import attrs

from sidkit._errors import UnknownKernelError


@functools.total_ordering
@attrs.frozen(eq=True, order=False)
class KernelVersion:
    """A mainline kernel version ``major.minor[.patch]``; distribution suffixes are dropped."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str | KernelVersion) -> KernelVersion:
        """Parse ``"6.12"``, ``"2.6.37"``, ``"6.18.44-fc-v782"`` (``uname -r``) and the like.

        2.6.x releases keep three numbers (``2.6.37`` is minor 6, patch 37) because that is
        how the era boundaries of that time are named.
        """
        if isinstance(text, KernelVersion):
            return text
        if not isinstance(text, str):
            raise UnknownKernelError(
                f"kernel version must be a string like '6.12', not {type(text).__name__}"
            )
        m = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
        if not m:
            raise UnknownKernelError(f"not a kernel version: {text!r} (expected e.g. '6.12')")
        major, minor, patch = int(m[1]), int(m[2]), int(m[3] or 0)
        if major < 2 or (major == 2 and minor < 6) or major > 99:
            raise UnknownKernelError(f"kernel {text!r} is outside the modelled range (2.6 .. )")
        return cls(major, minor, patch)

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, KernelVersion):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        if self.major == 2 or self.patch:
            return f"{self.major}.{self.minor}.{self.patch}"
        return f"{self.major}.{self.minor}"


LATEST = KernelVersion.parse("6.18")
"""The newest kernel sidkit models; the default profile."""
FIRST = KernelVersion.parse("2.6.12")
"""The first release in the kernel's git history; the oldest sidkit claims to know."""
