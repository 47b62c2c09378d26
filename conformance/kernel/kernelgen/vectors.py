# Strategy: runs every spec's cases through each build and assembles the vector files: per
# algorithm, the kernel groups (both series), the self-test's published SipHash vectors, then
# the BITS_PER_LONG == 32 groups, numbered in that order; each header says what was checked
# and how the args map to the kernel's types. The self-checks run first, so nothing is
# written from a harness that failed one.
"""Generate conformance/vectors/kernel-*.json from the built harnesses."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from .base import GENERATOR, HarnessError
from .cases import Case
from .checks import check_conntrack_zones, self_checks
from .harness import Build, run
from .render import render
from .selftest import parse_selftest
from .specs import BITS32_COMMENT, FLAG_NOTES, SPECS, SPECS_32, T_BYTES
from .tree import KernelTree

__all__ = ["HEADER_EXTRA", "generate", "kernel_source"]


def kernel_source(tree: KernelTree, files: list[str]) -> dict[str, Any]:
    return {
        "oracle": "kernel-c",
        "name": f"linux-source-{tree.series}",
        "version": tree.version,
        "files": files,
    }


def generate(outdir: Path, builds: list[Build]) -> list[Path]:
    docs: dict[str, dict[str, Any]] = {}
    counter: dict[str, int] = {}
    flags_used: dict[str, set[str]] = {}
    checks: list[str] = []

    def group_list(algorithm: str) -> list[dict[str, Any]]:
        if algorithm not in docs:
            docs[algorithm] = {"testGroups": []}
            counter[algorithm] = 0
            flags_used[algorithm] = set()
        groups: list[dict[str, Any]] = docs[algorithm]["testGroups"]
        return groups

    def tests_of(algorithm: str, cases: list[Case], results: list[str]) -> list[dict[str, Any]]:
        tests = []
        for c, r in zip(cases, results, strict=True):
            counter[algorithm] += 1
            flags_used[algorithm].update(c.flags)
            tests.append(
                {
                    "tcId": counter[algorithm],
                    "comment": c.comment,
                    "flags": c.flags,
                    "args": c.args,
                    "result": int(r),
                }
            )
        return tests

    selftests = {b.tree.series: parse_selftest(b.tree) for b in builds}
    for b in builds:
        rng = random.Random(f"sidkit-selfcheck-{b.tree.series}")
        for note in self_checks(b, selftests[b.tree.series], rng):
            checks.append(f"Checked when generating ({b.tree.series}): {note}")
    # Checks that concern only the conntrack files go into their headers alone.
    conntrack_checks = [
        f"Checked when generating ({b.tree.series}): {check_conntrack_zones(b)}" for b in builds
    ]

    for spec in SPECS:
        cases = spec.cases(random.Random(f"sidkit-kernel-vectors-{spec.name}"))
        for b in builds:
            if spec.needs_prandom and not b.has_prandom:
                continue
            if spec.toeplitz:
                if b.toeplitz_exe is None:
                    continue
                results = run(b.toeplitz_exe, [c.line for c in cases])
            else:
                results = run(b.exe, [c.line for c in cases])
            group_list(spec.algorithm).append(
                {
                    "type": "HashTest",
                    "function": spec.name,
                    "kernel": b.tree.upstream,
                    "source": kernel_source(b.tree, spec.files),
                    "argTypes": spec.arg_types,
                    "tests": tests_of(spec.algorithm, cases, results),
                }
            )

    # Published SipHash vectors, as the newest kernel's self-test builds them.
    primary = builds[0]
    st = selftests[primary.tree.series]
    same = all(
        (s.siphash, s.hsiphash, s.key_siphash, s.key_hsiphash, s.hsiphash32, s.key_hsiphash32)
        == (
            st.siphash,
            st.hsiphash,
            st.key_siphash,
            st.key_hsiphash,
            st.hsiphash32,
            st.key_hsiphash32,
        )
        for s in selftests.values()
    )
    if not same:
        raise HarnessError("the SipHash self-test vectors differ between kernels")
    published = {
        "oracle": "published",
        "name": "SipHash reference vectors as carried by the kernel self-test",
        "version": f"linux-source-{primary.tree.series} {primary.tree.version}",
        "files": [st.path],
    }
    for fname, vectors, vkey in (
        ("siphash", st.siphash, st.key_siphash),
        ("hsiphash", st.hsiphash, st.key_hsiphash),
    ):
        cases = [
            Case(
                f"self-test vector {i}: in[j] = j for j < {i}, key bytes 00..0f",
                ["SelfTest"],
                {"data": bytes(range(i)).hex(), "key": vkey.hex()},
                "",
            )
            for i in range(64)
        ]
        group_list("siphash").append(
            {
                "type": "HashTest",
                "function": fname,
                "kernel": None,
                "source": published,
                "argTypes": {"data": T_BYTES, "key": T_BYTES},
                "tests": tests_of("siphash", cases, [str(v) for v in vectors]),
            }
        )
    names = {s.name: s for s in SPECS}
    for func, nums, vec, idx in st.words:
        if func not in names:
            continue
        spec = names[func]
        key = st.key_siphash if vec == "siphash" else st.key_hsiphash
        argnames = [k for k in spec.arg_types if k != "key"]
        args: dict[str, Any] = dict(zip(argnames, nums, strict=True))
        args["key"] = key.hex()
        value = (st.siphash if vec == "siphash" else st.hsiphash)[idx]
        case = Case(
            f"self-test: {func} checked against test_vectors_{vec}[{idx}]", ["SelfTest"], args, ""
        )
        group_list("siphash").append(
            {
                "type": "HashTest",
                "function": func,
                "kernel": None,
                "source": published,
                "argTypes": spec.arg_types,
                "tests": tests_of("siphash", [case], [str(value)]),
            }
        )

    # BITS_PER_LONG == 32: the -m32 build, then the self-test's 32-bit HSipHash vectors.
    for spec in SPECS_32:
        cases = spec.cases(random.Random(f"sidkit-kernel-vectors-{spec.name}-bits_per_long-32"))
        for b in builds:
            group_list(spec.algorithm).append(
                {
                    "type": "HashTest",
                    "function": spec.name,
                    "kernel": b.tree.upstream,
                    "comment": BITS32_COMMENT,
                    "source": kernel_source(b.tree, spec.files),
                    "argTypes": spec.arg_types,
                    "tests": tests_of(spec.algorithm, cases, run(b.exe32, [c.line for c in cases])),
                }
            )
    cases = [
        Case(
            f"self-test vector {i} (BITS_PER_LONG == 32 branch): in[j] = j for j < {i}, "
            "key bytes 00..07",
            ["SelfTest"],
            {"data": bytes(range(i)).hex(), "key": st.key_hsiphash32.hex(), "bits_per_long": 32},
            "",
        )
        for i in range(64)
    ]
    group_list("siphash").append(
        {
            "type": "HashTest",
            "function": "hsiphash",
            "kernel": None,
            "comment": "BITS_PER_LONG == 32: HalfSipHash-1-3 with an 8-byte key",
            "source": published,
            "argTypes": {"data": T_BYTES, "key": T_BYTES, "bits_per_long": "int"},
            "tests": tests_of("siphash", cases, [str(v) for v in st.hsiphash32]),
        }
    )

    versions = ", ".join(f"linux-source-{b.tree.series} {b.tree.version}" for b in builds)
    written = []
    outdir.mkdir(parents=True, exist_ok=True)
    for algorithm, body in docs.items():
        header = [
            f"Generated by {GENERATOR} -- do not edit; regenerate with "
            f"`python3 {GENERATOR}`, verify with `--check`.",
            f"Oracle: the kernel's own C from Debian {versions}, compiled in userspace with "
            "the shims in conformance/kernel/shims/ (little-endian x86_64, "
            "CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS); groups whose args carry "
            "bits_per_long = 32 come from the same text compiled with gcc -m32 (i386, "
            "BITS_PER_LONG == 32).",
            "Ports are host-order integers (the harness applies htons() where the kernel takes "
            "a __be16); addresses are strings whose inet_pton bytes are what the kernel holds.",
            *checks,
        ]
        header += HEADER_EXTRA.get(algorithm, [])
        if algorithm.startswith("conntrack"):
            header += conntrack_checks
        if algorithm == "flow_dissector":
            for b in builds:
                header.append(
                    f"struct flow_keys layout in {b.tree.series} (offset+size): "
                    + " ".join(f"{k}={v}" for k, v in b.layout.items())
                )
        n = counter[algorithm]
        doc = {
            "algorithm": algorithm,
            "schema": "hash_vectors.schema.json",
            "generator": GENERATOR,
            "header": header,
            "notes": {f: FLAG_NOTES[f] for f in sorted(flags_used[algorithm])},
            "numberOfTests": n,
            "testGroups": body["testGroups"],
        }
        path = outdir / f"kernel-{algorithm}.json"
        path.write_text(render(doc))
        written.append(path)
    return written


HEADER_EXTRA: dict[str, list[str]] = {
    "ehash": [
        "inet_ehashfn/udp_ehashfn: jhash_3words(laddr, faddr, lport << 16 | fport_be, "
        "initval) with addresses as raw network-order words; lport host order.",
        "inet6_ehashfn: initval = inet6_ehash_secret + net_hash_mix; ipv6_hash_secret = the "
        "secret of __ipv6_addr_jhash(faddr) (6.1: ipv6_hash_secret, 6.12: "
        "tcp_ipv6_hash_secret). udp6_ehashfn: udp6_ehash_secret + net_hash_mix, and "
        "udp_ipv6_hash_secret for the foreign address.",
    ],
    "hash": [
        "hash_64_generic returns u32: for bits > 32 the result is the low 32 bits of "
        "(val * GOLDEN_RATIO_64) >> (64 - bits).",
        "hash_64 with bits_per_long = 32: hash_64_generic's 32-bit branch, "
        "hash_32((u32)val ^ __hash_32(val >> 32), bits); bits is 1..32 (hash_32 shifts by "
        "32 - bits).",
    ],
    "siphash": [
        "hsiphash with bits_per_long = 32: lib/siphash.c's BITS_PER_LONG == 32 branch, "
        "HalfSipHash-1-3; key is the 8 bytes of hsiphash_key_t (two 32-bit unsigned longs, "
        "little-endian).",
    ],
    "conntrack": [
        "Tuple: memset 0, src.l3num = AF_INET (2) or AF_INET6 (10), src.u.all / dst.u.all = "
        "htons(port), dst.protonum, dst.dir = 0; secret = nf_conntrack_hash_rnd bytes "
        "(siphash_key_t memory, little-endian words).",
    ],
    "conntrack-zones": [
        "Tuple as in kernel-conntrack.json, with dst.dir = the node's direction (not hashed). "
        "The harness fills struct nf_conntrack_zone {id, flags, dir} and hashes with "
        "nf_ct_zone_id(&zone, dir) from include/net/netfilter/nf_conntrack_zones.h "
        "(CONFIG_NF_CONNTRACK_ZONES=y); args.zone_id is that value, the comment names the "
        "zone and the direction. The bucket of a table of size n is "
        "reciprocal_scale(result, n) = (result * n) >> 32 (__hash_conntrack, checked above).",
    ],
    "flow_dissector": [
        "struct flow_keys: memset 0; control.addr_type = FLOW_DISSECTOR_KEY_IPV4_ADDRS or "
        "_IPV6_ADDRS; basic.n_proto = htons(ETH_P_IP / ETH_P_IPV6); basic.ip_proto; "
        "ports.src/dst = htons(port); addrs.v4addrs or v6addrs; then "
        "__flow_hash_from_keys(&keys, key).",
    ],
    "toeplitz": [
        "toeplitz() of the selftest: the input is zero-padded to FOUR_TUPLE_MAX_LEN (36) "
        "bytes and the key to TOEPLITZ_KEY_MAX_LEN (60); only key bytes 0..39 are ever used.",
    ],
}
