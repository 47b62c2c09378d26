#!/usr/bin/env python3
# Strategy: the corpus is other people's captures, so none is committed; this script brings
# them from where CI can reach: Debian's archive, the same place fetch-kernel-source.sh and
# fetch-frr.sh get their data. Each source is an upstream tarball (.orig.tar.*) of a Debian
# source package at a pinned URL and sha256 (manifest.json "sources"); each capture is one
# member of it, checked by its own sha256 before it is written. Stdlib only.
"""Fetch the real-capture corpus into conformance/captures/_work (gitignored).

    python3 conformance/captures/fetch.py          # download what is missing, verify all
    python3 conformance/captures/fetch.py --check  # verify only; exit 1 if anything is missing

Idempotent: a capture already present with the pinned sha256 is not fetched again, and a
tarball already downloaded is reused. A ``.gz`` member is stored decompressed (the sha256 is
the member's, as published). When Debian drops a pinned tarball from the archive the script
says so and stops: pick the new version's tarball, and the per-capture sha256s tell whether
the captures changed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
MANIFEST = HERE / "manifest.json"


def load_manifest() -> dict[str, Any]:
    """manifest.json: ``sources`` (tarballs) and ``captures`` (members of them)."""
    data: dict[str, Any] = json.loads(MANIFEST.read_text())
    return data


def local_path(capture: dict[str, Any]) -> Path:
    """Where a capture lives once fetched: _work/<source>/<file, without .gz>."""
    return WORK / str(capture["name"])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stored_ok(capture: dict[str, Any]) -> bool:
    path = local_path(capture)
    stamp = path.with_name(path.name + ".sha256")
    return path.is_file() and stamp.is_file() and stamp.read_text().strip() == capture["sha256"]


def _download(source: dict[str, Any]) -> Path:
    tarball = WORK / "sources" / str(source["file"])
    if tarball.is_file() and _file_sha256(tarball) == source["sha256"]:
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    print(f"fetch-captures: downloading {source['url']}", file=sys.stderr)
    with tempfile.NamedTemporaryFile(dir=tarball.parent, delete=False) as tmp:
        try:
            with urllib.request.urlopen(source["url"], timeout=120) as resp:
                shutil.copyfileobj(resp, tmp)
        except OSError as exc:
            Path(tmp.name).unlink()
            raise SystemExit(
                f"fetch-captures: cannot download {source['url']}: {exc}\n"
                f"  (Debian may have replaced {source['package']} {source['version']}; "
                "update manifest.json's source and check the capture sha256s)"
            ) from None
    got = _file_sha256(Path(tmp.name))
    if got != source["sha256"]:
        Path(tmp.name).unlink()
        raise SystemExit(
            f"fetch-captures: {source['file']}: sha256 {got}, pinned {source['sha256']}"
        )
    Path(tmp.name).replace(tarball)
    return tarball


def fetch(check_only: bool = False) -> int:
    """Fetch every missing capture; returns the number of captures missing (check_only)."""
    manifest = load_manifest()
    missing = [c for c in manifest["captures"] if not _stored_ok(c)]
    if check_only or not missing:
        for c in missing:
            print(f"fetch-captures: missing {c['name']}", file=sys.stderr)
        if not missing:
            count = len(manifest["captures"])
            print(f"fetch-captures: all {count} captures present in {WORK}", file=sys.stderr)
        return len(missing)
    by_source: dict[str, list[dict[str, Any]]] = {}
    for c in missing:
        by_source.setdefault(str(c["source"]), []).append(c)
    for name, captures in by_source.items():
        source = manifest["sources"][name]
        tarball = _download(source)
        wanted = {str(source["top"]) + str(c["path"]): c for c in captures}
        with tarfile.open(tarball) as tar:
            for member in tar:
                capture = wanted.pop(member.name, None)
                if capture is None:
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    raise SystemExit(f"fetch-captures: {member.name} is not a file")
                data = fh.read()
                got = _sha256(data)
                if got != capture["sha256"]:
                    label, pinned = capture["name"], capture["sha256"]
                    raise SystemExit(f"fetch-captures: {label}: sha256 {got}, pinned {pinned}")
                if str(capture["path"]).endswith(".gz"):
                    data = gzip.decompress(data)
                path = local_path(capture)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                path.with_name(path.name + ".sha256").write_text(capture["sha256"] + "\n")
        if wanted:
            raise SystemExit(f"fetch-captures: not in {source['file']}: {', '.join(wanted)}")
    print(f"fetch-captures: {len(manifest['captures'])} captures ready in {WORK}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify only, download nothing")
    args = parser.parse_args(argv)
    return 1 if fetch(check_only=args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
