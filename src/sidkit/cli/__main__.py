"""``python -m sidkit.cli``: the same command as the ``sidkit`` script."""

from __future__ import annotations

import sys

from sidkit.cli import main

sys.exit(main())
