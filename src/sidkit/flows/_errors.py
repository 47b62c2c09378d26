# Strategy: the one error family of sidkit.flows, below every module that raises it -- frame
# decoding (an unknown link type), capture reading (not a capture, cut short, corrupt) and the
# analyzer (a capture with nothing readable). Each error is an InputValueError with a code, so
# a caller that catches ValueError or sidkit's own errors catches these. Bad *packets* never
# raise (they become reason strings that the analyzer counts); only a bad *capture* does.
"""The capture errors of sidkit.flows (private; re-exported by sidkit.flows)."""

from __future__ import annotations

from sidkit._errors import InputValueError

__all__ = ["CaptureError", "NotACaptureError", "UnsupportedLinkTypeError"]


class CaptureError(InputValueError):
    """A capture file sidkit cannot read (see the subclasses), or cannot read any further."""

    code = "bad-capture"


class NotACaptureError(CaptureError):
    """The bytes do not start with a pcap or pcapng header."""

    code = "not-a-capture"


class UnsupportedLinkTypeError(CaptureError):
    """The capture's (or an interface's) link type is not one sidkit decodes."""

    code = "unsupported-linktype"
