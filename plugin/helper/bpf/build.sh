#!/usr/bin/env bash
# Compiles spy.bpf.c into spy.bpf.o, the object the helper image ships, with Debian trixie's
# clang and libbpf headers inside a throw-away container (the same base image as the helper),
# so that it is the same bytes on any machine with Docker:
#   bash plugin/helper/bpf/build.sh          rebuild spy.bpf.o
#   bash plugin/helper/bpf/build.sh --check  fail if spy.bpf.o is not what spy.bpf.c compiles to
# (.ci/run runs --check). The builder image docker-spy-bpf-builder is kept for the next run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base=${SPY_BASE_IMAGE:-debian:trixie-slim}
builder=docker-spy-bpf-builder
if ! docker image inspect "$builder" >/dev/null 2>&1; then
    echo "build.sh: making $builder from $base (clang, llvm, libbpf-dev: about 140 MB of packages)" >&2
    printf '%s\n' "FROM $base" \
        'RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang llvm libbpf-dev linux-libc-dev && rm -rf /var/lib/apt/lists/*' \
        | docker build -q -t "$builder" - >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# -g gives the object its BTF (libbpf needs it for the map definitions; the kernel's own BTF
# is never needed); the DWARF that -g also makes is stripped, as libbpf-tools do.
docker run --rm --network none -v "$here/spy.bpf.c:/src/spy.bpf.c:ro" -v "$out:/out" -w /src "$builder" \
    sh -c 'clang -O2 -g -Wall -Werror -target bpf -I/usr/include/$(uname -m)-linux-gnu \
               -c spy.bpf.c -o /out/spy.bpf.o \
           && llvm-strip -g /out/spy.bpf.o \
           && clang --version | head -1 > /out/clang-version'
if [ "${1:-}" = --check ]; then
    if ! cmp -s "$out/spy.bpf.o" "$here/spy.bpf.o"; then
        echo "build.sh: spy.bpf.o is not what spy.bpf.c compiles to with $(cat "$out/clang-version");" \
             "run bash plugin/helper/bpf/build.sh and commit the result" >&2
        exit 1
    fi
    echo "build.sh: spy.bpf.o is what spy.bpf.c compiles to ($(cat "$out/clang-version"))" >&2
else
    cp "$out/spy.bpf.o" "$here/spy.bpf.o"
    echo "build.sh: wrote $here/spy.bpf.o ($(stat -c %s "$here/spy.bpf.o") bytes, $(cat "$out/clang-version"))" >&2
fi
