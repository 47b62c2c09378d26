"""A third-party plugin package, installed by pip, is discovered by a fresh interpreter.

The package is the example of docs/plugins.rst (docs/examples/sidkit_kcp), packed here as a
wheel with a ``[sidkit]`` entry point, installed by ``pip install --target`` (no index, no
network) and used from a new Python process -- the same path a user's ``pip install
sidkit-kcp`` takes. A second wheel whose module fails to import shows that a broken plugin
costs a warning, not the host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sidkit_kcp"


def _wheel(out: Path, dist: str, files: dict[str, bytes], entry_points: str) -> Path:
    """A minimal pure-Python wheel (PEP 427) with a RECORD pip can check."""
    info = f"{dist}-1.0.dist-info"
    contents = dict(files)
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n".encode()
    contents[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: sidkit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    contents[f"{info}/entry_points.txt"] = entry_points.encode()
    record = []
    for name, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = out / f"{dist}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    return path


def _pip_install(wheel: Path, target: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--disable-pip-version-check", "--target", str(target), str(wheel)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


PROBE = """
import json, warnings
warnings.simplefilter("always")
from sidkit.extract import Extractor
from sidkit.plugin import default_host
host = default_host()
segment = bytes.fromhex("78563412") + bytes([81, 0]) + bytes(14) + (3).to_bytes(4, "little")
sid = Extractor(["kcp", "quic"], {"cid_length": 8}).extract(segment + b"abc")
print(json.dumps({
    "protocols": sorted(host.protocols),
    "module": type(host.plugin_of("kcp")).__name__ + ":" + host.plugin_of("kcp").__file__,
    "sid": [sid.protocol, sid.value.hex(), dict(sid.details)],
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("plugin-install")
    target = work / "site"
    files = {"sidkit_kcp/__init__.py": (EXAMPLE / "__init__.py").read_bytes()}
    kcp = _wheel(work, "sidkit_kcp", files, "[sidkit]\nkcp = sidkit_kcp\n")
    broken = _wheel(
        work,
        "sidkit_broken",
        {"sidkit_broken.py": b"raise ImportError('sidkit_broken needs libfoo')\n"},
        "[sidkit]\nbroken = sidkit_broken\n",
    )
    _pip_install(kcp, target)
    _pip_install(broken, target)
    return target


def _probe(site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120,
        check=False,
    )  # fmt: skip


def test_pip_installed_plugin_is_discovered(installed: Path) -> None:
    result = _probe(installed)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "kcp" in report["protocols"] and "quic" in report["protocols"]
    assert report["module"].startswith("module:" + str(installed))
    assert report["sid"] == ["kcp", "78563412", {"command": "push", "field": "conv"}]


def test_broken_installed_plugin_warns_and_host_survives(installed: Path) -> None:
    result = _probe(installed)
    assert result.returncode == 0
    assert "PluginLoadWarning" in result.stderr
    assert "broken = sidkit_broken" in result.stderr and "needs libfoo" in result.stderr
    assert "kcp" in json.loads(result.stdout)["protocols"]
