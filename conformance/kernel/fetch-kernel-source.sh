#!/usr/bin/env bash
# Fetch Debian's linux-source packages and extract only the files the kernel-C oracle harness
# compiles or reads. Everything lands in conformance/kernel/_work/ (gitignored); kernel source is
# never committed.
#
#   conformance/kernel/fetch-kernel-source.sh [SERIES...]     (default: 6.12 6.1)
#
# Result, per series X:
#   _work/linux-source-X/...        the chosen files, paths as in the kernel tree
#   _work/linux-source-X.version    the exact Debian package version (dpkg-deb -f ... Version)
#
# versions.txt pins the Debian version per series ("6.12 6.12.117-1~deb12u1"), so that
# `generate.py --check` reproduces the committed vectors on a fresh machine.
#
# Idempotent: a series already extracted (at the pinned version, with the same paths) is
# skipped, and a .deb already downloaded is not downloaded again. Installs gcc, xz-utils and
# gcc-multilib (for the harness's gcc -m32 build, BITS_PER_LONG == 32) through apt-get when
# they are missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${here}/_work"
debs="${work}/debs"
mkdir -p "${debs}"

if [[ $# -gt 0 ]]; then
    series=("$@")
else
    series=(6.12 6.1)
fi

# Paths (relative to the top of the kernel tree) that the harness needs. Globs are tar wildcards.
paths=(
    'include/linux/*.h'
    'include/linux/unaligned/*'
    'include/net/*.h'
    'include/net/netfilter/*.h'
    'include/net/netns/*.h'
    'include/uapi/linux/*.h'
    'include/uapi/linux/netfilter/*.h'
    'include/asm-generic/unaligned.h'
    'lib/siphash.c'
    'lib/siphash_kunit.c'
    'lib/test_siphash.c'
    'lib/tests/siphash_kunit.c'
    'lib/random32.c'
    'net/ipv4/inet_hashtables.c'
    'net/ipv4/udp.c'
    'net/ipv6/inet6_hashtables.c'
    'net/ipv6/udp.c'
    'net/netfilter/nf_conntrack_core.c'
    'net/netfilter/nf_conntrack_proto_udp.c'
    'net/netfilter/nf_conntrack_proto_generic.c'
    'include/linux/netfilter/nf_conntrack_zones_common.h'
    'net/core/flow_dissector.c'
    'net/core/sock_reuseport.c'
    'tools/testing/selftests/net/toeplitz.c'
)

apt_updated=0
apt_update_once() {
    if [[ ${apt_updated} -eq 0 ]]; then
        apt-get update -qq
        apt_updated=1
    fi
}

need_tools=()
command -v gcc >/dev/null 2>&1 || need_tools+=(gcc libc6-dev)
command -v xz >/dev/null 2>&1 || need_tools+=(xz-utils)
if [[ ${#need_tools[@]} -gt 0 ]]; then
    echo "fetch-kernel-source: installing ${need_tools[*]}" >&2
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_tools[@]}" >&2
fi

# generate.py also builds the harness with gcc -m32 (BITS_PER_LONG == 32: hsiphash's
# HalfSipHash branch, hash_64's 32-bit branch); that needs the i386 libc and libgcc of
# gcc-multilib. Installed only when a 32-bit test program cannot be built and run.
m32_works() {
    local tmp rc
    tmp="$(mktemp -d)"
    printf 'int main(void) { return sizeof(long) == 4 ? 0 : 1; }\n' >"${tmp}/m32.c"
    rc=0
    gcc -m32 "${tmp}/m32.c" -o "${tmp}/m32" >/dev/null 2>&1 && "${tmp}/m32" || rc=1
    rm -rf "${tmp}"
    return "${rc}"
}
if ! m32_works; then
    echo "fetch-kernel-source: gcc -m32 cannot build a 32-bit program; installing gcc-multilib" >&2
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-multilib >&2
    if ! m32_works; then
        echo "fetch-kernel-source: gcc -m32 still fails after installing gcc-multilib" >&2
        exit 1
    fi
fi

# The pinned Debian version of each series (versions.txt beside this script) keeps the vectors
# reproducible; when the archive no longer has it, the current version is used with a warning.
pinned_version() {
    if [[ -f "${here}/versions.txt" ]]; then
        awk -v s="$1" '$1 == s { print $2 }' "${here}/versions.txt"
    fi
}

# Print the .deb in debs/ for package $1 with version $2 (any version when $2 is empty).
find_deb() {
    local d best=""
    shopt -s nullglob
    for d in "${debs}/$1"_*.deb; do
        if [[ -z "$2" || "$(dpkg-deb -f "${d}" Version)" == "$2" ]]; then
            best="${d}"
        fi
    done
    shopt -u nullglob
    printf '%s' "${best}"
}

download() {
    (cd "${debs}" && apt-get download -q "$1" >&2) && return 0
    apt_update_once
    (cd "${debs}" && apt-get download -q "$1" >&2)
}

for s in "${series[@]}"; do
    pkg="linux-source-${s}"
    tree="${work}/${pkg}"
    verfile="${work}/${pkg}.version"
    pin="$(pinned_version "${s}")"
    if [[ -s "${verfile}" && -f "${tree}/.extracted-paths" ]] \
        && [[ -z "${pin}" || "$(cat "${verfile}")" == "${pin}" ]] \
        && [[ "$(cat "${tree}/.extracted-paths")" == "$(printf '%s\n' "${paths[@]}")" ]]; then
        echo "fetch-kernel-source: ${pkg} $(cat "${verfile}") already extracted" >&2
        continue
    fi

    deb="$(find_deb "${pkg}" "${pin}")"
    if [[ -z "${deb}" && -n "${pin}" ]]; then
        echo "fetch-kernel-source: downloading ${pkg}=${pin}" >&2
        if download "${pkg}=${pin}"; then
            deb="$(find_deb "${pkg}" "${pin}")"
        else
            echo "fetch-kernel-source: WARNING: ${pkg} ${pin} is no longer in the archive;" \
                "using the current version (vectors will differ in source.version)" >&2
        fi
    fi
    if [[ -z "${deb}" ]]; then
        deb="$(find_deb "${pkg}" "")"
    fi
    if [[ -z "${deb}" ]]; then
        echo "fetch-kernel-source: downloading ${pkg}" >&2
        download "${pkg}"
        deb="$(find_deb "${pkg}" "")"
    fi
    if [[ -z "${deb}" ]]; then
        echo "fetch-kernel-source: no ${pkg} .deb could be downloaded" >&2
        exit 1
    fi
    version="$(dpkg-deb -f "${deb}" Version)"

    echo "fetch-kernel-source: extracting ${pkg} ${version}" >&2
    rm -rf "${tree}.tmp"
    mkdir -p "${tree}.tmp"
    wild=()
    for p in "${paths[@]}"; do
        wild+=("${pkg}/${p}")
    done
    # The inner tarball is /usr/src/linux-source-X.tar.xz; missing optional paths are fine
    # (e.g. lib/test_siphash.c exists only in older trees), so tar's "not found" is tolerated.
    dpkg-deb --fsys-tarfile "${deb}" \
        | tar -xO "./usr/src/${pkg}.tar.xz" \
        | tar -xJf - -C "${tree}.tmp" --wildcards --no-wildcards-match-slash "${wild[@]}" \
            2>"${tree}.tmp.err" || true
    if [[ ! -f "${tree}.tmp/${pkg}/include/linux/jhash.h" ]]; then
        cat "${tree}.tmp.err" >&2
        echo "fetch-kernel-source: extraction of ${pkg} failed" >&2
        exit 1
    fi
    rm -f "${tree}.tmp.err"
    printf '%s\n' "${paths[@]}" >"${tree}.tmp/${pkg}/.extracted-paths"
    rm -rf "${tree}"
    mv "${tree}.tmp/${pkg}" "${tree}"
    rmdir "${tree}.tmp"
    printf '%s\n' "${version}" >"${verfile}"
    echo "fetch-kernel-source: ${pkg} ${version} ready in ${tree}" >&2
done
