# Strategy: the `sidkit` command. _main holds the parser and the small subcommands (hash,
# eras, sid, demo); larger subcommands register themselves from their own modules (_flows,
# _vectors, _socket for `hash socket`). Every error is one readable line on stderr and exit
# status 2; --help on each subcommand teaches with an example.
"""Command-line interface (``sidkit``, also ``python -m sidkit.cli``)."""

from __future__ import annotations

from sidkit.cli._main import main

__all__ = ["main"]
