"""The reproducers of docs/sharp-edges.rst, run the way a user runs them.

Each script in docs/reproducers creates its own network namespace, provokes one surprising
behaviour of the kernel's SO_REUSEPORT selection and exits 0 when the behaviour reproduced,
1 when the kernel behaved otherwise and 77 when it could not run. The live kernel is the
oracle: on a kernel where the page says the behaviour exists, the script must exit 0; a script
that cannot run is a missing oracle (a skip, or a failure under SIDKIT_REQUIRE_ORACLES=1).
The page must show every script, so none can be added without its explanation.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import oracle_unavailable

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = DOCS / "sharp-edges.rst"
SCRIPTS = sorted((DOCS / "reproducers").glob("*.py"))

# The first kernel on which each behaviour is expected, as the page states it.
SINCE: dict[str, tuple[int, int]] = {
    "disconnect_steals_port": (6, 13),  # udp_lib_hash4() detaches a connecting member
    "connect_regroups": (6, 13),
    "wildcard_hash_ignores_daddr": (5, 0),  # 4cdeeee9252a: always the INADDR_ANY pass
    "wildcard_connect_leaves_group": (4, 5),  # udp_lib_rehash() detaches since the groups
    "second_connect_stays_in_group": (6, 13),  # udp_lib_hash4() detaches at the first only
    "reconnect_misses_4tuple_hash": (6, 13),  # 644f9108f3a5: hash4 moves only on rehash
    "ipv6_disconnect_keeps_peer": (6, 13),  # the member must be out of its group (hash4)
    "ipv6_connected_takes_loopback4": (6, 14),  # a502ea6fa94b: udp4_lib_lookup1()
}


def _kernel() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    assert m, platform.release()
    return int(m[1]), int(m[2])


def test_every_script_is_known() -> None:
    assert {s.stem for s in SCRIPTS} == set(SINCE)


def test_page_shows_every_script() -> None:
    page = PAGE.read_text(encoding="utf-8")
    missing = [s.name for s in SCRIPTS if f".. literalinclude:: reproducers/{s.name}" not in page]
    assert not missing, f"docs/sharp-edges.rst does not show {missing}"


@pytest.mark.oracle
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.stem)
def test_reproduces_on_this_kernel(script: Path) -> None:
    if not sys.platform.startswith("linux"):
        oracle_unavailable(f"the reproducers need Linux, this is {sys.platform}")
    if _kernel() < SINCE[script.stem]:
        pytest.skip(f"{script.stem} is expected from Linux {SINCE[script.stem]}, not this kernel")
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    if run.returncode == 77:
        oracle_unavailable(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}{run.stderr}"
    assert run.stdout.rstrip().splitlines()[-1].startswith("reproduced:"), run.stdout
