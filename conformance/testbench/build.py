#!/usr/bin/env python3
# Strategy: the programs the test bench must show running are other people's C, so they are
# built here from their published source, never committed: nginx's QUIC reuseport helper from
# Debian's nginx source package (the .orig tarball at a pinned URL and sha256, as
# conformance/captures/fetch.py pins its tarballs), the kernel selftests' reuseport programs
# from the linux-source .deb that conformance/kernel/fetch-kernel-source.sh pins (reused from
# its _work/debs when present), and sidkit's own planted misrouting program. clang and the
# libbpf headers come from Debian (clang, libbpf-dev; .ci/run installs them). Outputs go to
# _work/ (gitignored) with a built.json naming each file. Stdlib only.
"""Build the third-party reuseport programs for the test bench into conformance/testbench/_work.

    python3 conformance/testbench/build.py           # download what is missing, build all
    python3 conformance/testbench/build.py --check   # exit 1 unless everything is built

Idempotent: a tarball or .deb already present with the pinned checksum/version is reused,
and an object newer than its source is not rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
KERNEL_DIR = HERE.parent / "kernel"

NGINX = {
    "package": "nginx",
    "version": "1.26.3",
    "url": "http://deb.debian.org/debian/pool/main/n/nginx/nginx_1.26.3.orig.tar.gz",
    "sha256": "69ee2b237744036e61d24b836668aad3040dda461fe6f570f1787eab570c75aa",
    "top": "nginx-1.26.3/",
    "members": [
        "src/event/quic/bpf/ngx_quic_reuseport_helper.c",
        "src/event/quic/bpf/makefile",
        "src/event/quic/ngx_event_quic_bpf_code.c",
        "src/event/quic/ngx_event_quic_bpf.c",
        "LICENSE",
    ],
}
KERNEL_SERIES = "6.12"
SELFTEST_MEMBERS = [
    "tools/testing/selftests/bpf/progs/test_select_reuseport_kern.c",
    "tools/testing/selftests/bpf/test_select_reuseport_common.h",
    "tools/testing/selftests/bpf/prog_tests/select_reuseport.c",
    "tools/testing/selftests/net/reuseport_bpf.c",
]
# libbpf 1.0 removed struct bpf_map_def from bpf_helpers.h; nginx's helper still declares its
# map with it (``struct bpf_map_def SEC("maps") ngx_quic_sockmap;``), so it no longer builds
# against Debian's libbpf-dev as shipped. The definition libbpf 0.x had is supplied first.
BPF_MAP_DEF_SHIM = """\
/* struct bpf_map_def as libbpf < 1.0 defined it (bpf_helpers.h); sidkit build shim */
struct bpf_map_def {
\tunsigned int type;
\tunsigned int key_size;
\tunsigned int value_size;
\tunsigned int max_entries;
\tunsigned int map_flags;
};
"""


def _say(msg: str) -> None:
    print(f"testbench-build: {msg}", file=sys.stderr)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _multiarch_include() -> list[str]:
    try:
        arch = subprocess.run(
            ["gcc", "-print-multiarch"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        arch = ""
    inc = Path("/usr/include") / arch
    return [f"-I{inc}"] if arch and inc.is_dir() else []


def _clang(args: list[str]) -> None:
    clang = shutil.which("clang")
    if clang is None:
        raise SystemExit("testbench-build: clang not found (apt-get install clang libbpf-dev)")
    if not Path("/usr/include/bpf/bpf_helpers.h").is_file():
        raise SystemExit("testbench-build: libbpf headers not found (apt-get install libbpf-dev)")
    cmd = [clang, "-O2", "-target", "bpf", *_multiarch_include(), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"testbench-build: {' '.join(cmd)} failed:\n{result.stderr}")


def _fresh(out: Path, *sources: Path) -> bool:
    return out.is_file() and all(out.stat().st_mtime >= s.stat().st_mtime for s in sources)


def nginx() -> dict[str, str]:
    root = WORK / "nginx"
    tarball = WORK / "sources" / Path(NGINX["url"]).name  # type: ignore[arg-type]
    if not (tarball.is_file() and _sha256(tarball) == NGINX["sha256"]):
        tarball.parent.mkdir(parents=True, exist_ok=True)
        _say(f"downloading {NGINX['url']}")
        tmp = tarball.with_suffix(".part")
        with urllib.request.urlopen(str(NGINX["url"]), timeout=120) as resp, tmp.open("wb") as fh:
            shutil.copyfileobj(resp, fh)
        if _sha256(tmp) != NGINX["sha256"]:
            tmp.unlink()
            raise SystemExit(f"testbench-build: {NGINX['url']} does not have the pinned sha256")
        tmp.rename(tarball)
    helper = root / "src/event/quic/bpf/ngx_quic_reuseport_helper.c"
    if not helper.is_file():
        with tarfile.open(tarball) as tar:
            for member in NGINX["members"]:
                data = tar.extractfile(f"{NGINX['top']}{member}")
                assert data is not None
                target = root / member
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data.read())
    shim = root / "bpf_map_def_shim.h"
    shim.write_text(BPF_MAP_DEF_SHIM)
    obj = root / "ngx_quic_reuseport_helper.o"
    if not _fresh(obj, helper):
        # nginx's makefile: clang $(CFLAGS) $(DEFS) -target bpf -c, CFLAGS=-O2 -Wall,
        # DEFS = -DPROGNAME="ngx_quic_reuseport_helper" -DLICENSE_BSD -DLICENSE="BSD"
        _clang(
            [
                "-Wall",
                '-DPROGNAME="ngx_quic_reuseport_helper"',
                "-DLICENSE_BSD",
                '-DLICENSE="BSD"',
                "-include",
                str(shim),
                "-c",
                str(helper),
                "-o",
                str(obj),
            ]
        )
    return {
        "nginx_helper_object": str(obj),
        "nginx_bpf_code": str(root / "src/event/quic/ngx_event_quic_bpf_code.c"),
        "nginx_version": str(NGINX["version"]),
    }


def _pinned_kernel() -> str:
    """The Debian version conformance/kernel/versions.txt pins for KERNEL_SERIES ("" if none)."""
    versions = KERNEL_DIR / "versions.txt"
    if versions.is_file():
        for line in versions.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == KERNEL_SERIES:
                return parts[1]
    return ""


def _find_deb(pkg: str, version: str) -> tuple[Path, str] | None:
    """A downloaded .deb of *pkg* (at *version*, or any when empty), with its version."""
    for folder in (KERNEL_DIR / "_work" / "debs", WORK / "debs"):
        for deb in sorted(folder.glob(f"{pkg}_*.deb")) if folder.is_dir() else []:
            found = subprocess.run(
                ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
            ).stdout.strip()
            if not version or found == version:
                return deb, found
    return None


def _kernel_deb() -> tuple[Path, str]:
    """linux-source-<series> at the pinned version, reusing fetch-kernel-source.sh's download;
    when the archive no longer has the pinned version, the current one, with a warning (as
    fetch-kernel-source.sh does)."""
    pin = _pinned_kernel()
    pkg = f"linux-source-{KERNEL_SERIES}"
    found = _find_deb(pkg, pin)
    if found is not None:
        return found
    folder = WORK / "debs"
    folder.mkdir(parents=True, exist_ok=True)
    for wanted in [f"{pkg}={pin}", pkg] if pin else [pkg]:
        _say(f"downloading {wanted}")
        if subprocess.run(
            ["apt-get", "download", "-q", wanted], cwd=folder, check=False
        ).returncode:
            _say(f"WARNING: apt-get download {wanted} failed")
            continue
        found = _find_deb(pkg, pin if wanted != pkg else "")
        if found is not None:
            return found
    raise SystemExit(f"testbench-build: no {pkg} .deb could be downloaded")


def selftests() -> dict[str, str]:
    root = WORK / f"linux-source-{KERNEL_SERIES}"
    stamp = root / ".version"
    if not all((root / m).is_file() for m in SELFTEST_MEMBERS) or not stamp.is_file():
        deb, version = _kernel_deb()
        _say(f"extracting the reuseport selftests from {deb.name}")
        pkg = f"linux-source-{KERNEL_SERIES}"
        root.mkdir(parents=True, exist_ok=True)
        fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        inner = subprocess.Popen(
            ["tar", "-xO", f"./usr/src/{pkg}.tar.xz"], stdin=fsys.stdout, stdout=subprocess.PIPE
        )
        subprocess.run(
            ["tar", "-xJf", "-", "-C", str(WORK), *(f"{pkg}/{m}" for m in SELFTEST_MEMBERS)],
            stdin=inner.stdout,
            check=True,
        )
        inner.wait()
        fsys.wait()
        stamp.write_text(version + "\n")
    kern = root / SELFTEST_MEMBERS[0]
    obj = root / "test_select_reuseport_kern.o"
    if not _fresh(obj, kern):
        # as the selftests' Makefile builds progs/*.c: clang -g -O2 --target=bpf, with the
        # selftest directory on the include path for test_select_reuseport_common.h
        _clang(["-g", f"-I{root / 'tools/testing/selftests/bpf'}", "-c", str(kern), "-o", str(obj)])
    return {
        "select_reuseport_object": str(obj),
        "select_reuseport_test": str(root / SELFTEST_MEMBERS[2]),
        "reuseport_bpf_source": str(root / SELFTEST_MEMBERS[3]),
        "kernel_version": stamp.read_text().strip(),
    }


def own_programs() -> dict[str, str]:
    """sidkit's own test programs (conformance/testbench/programs): the planted off-by-one
    and the global-data one."""
    out = {}
    for key, stem in (
        ("misroute_object", "misroute_off_by_one"),
        ("global_data_object", "global_data"),
    ):
        src = HERE / "programs" / f"{stem}.c"
        obj = WORK / f"{stem}.o"
        if not _fresh(obj, src):
            WORK.mkdir(parents=True, exist_ok=True)
            _clang(["-g", "-c", str(src), "-o", str(obj)])
        out[key] = str(obj)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if missing")
    args = parser.parse_args(argv)
    manifest = WORK / "built.json"
    if args.check:
        if not manifest.is_file():
            _say("nothing built yet")
            return 1
        built = json.loads(manifest.read_text())
        missing = [
            v
            for k, v in built.items()
            if k.endswith(("_object", "_source", "_code")) and not Path(v).is_file()
        ]
        for m in missing:
            _say(f"missing {m}")
        return 1 if missing else 0
    WORK.mkdir(parents=True, exist_ok=True)
    built = {**nginx(), **selftests(), **own_programs()}
    manifest.write_text(json.dumps(built, indent=1) + "\n")
    _say(f"built: {', '.join(k for k in built if k.endswith('_object'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
