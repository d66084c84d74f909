#!/usr/bin/env bash
# Build the aarch64 sysroot the TVM target runs its aarch64 artifacts in, under qemu-aarch64.
#
#   make aarch64-sysroot            (or: bash scripts/aarch64_sysroot.sh)
#
# What it sets up (idempotent; a finished sysroot is left alone):
#   - qemu-aarch64 (Debian qemu-user): installed with apt-get when run as root and missing;
#   - Debian arm64 python3.11 and the C libraries it and TVM's runtime need, downloaded with
#     apt-get (after `dpkg --add-architecture arm64`) and unpacked into the sysroot;
#   - aarch64 wheels of apache-tvm-ffi, apache-tvm and numpy (PyPI), pip-installed into
#     SYSROOT/site with --platform manylinux_2_28_aarch64 --only-binary=:all:.
#
# The sysroot lives in $EDGEST_AARCH64_SYSROOT (default ~/.cache/edgest/aarch64-sysroot);
# the TVM target looks there too. Run it with: qemu-aarch64 -L SYSROOT SYSROOT/usr/bin/python3.11
set -euo pipefail

SYSROOT="${EDGEST_AARCH64_SYSROOT:-$HOME/.cache/edgest/aarch64-sysroot}"
PIP_PYTHON="${PIP_PYTHON:-$(dirname "$0")/../.venv/bin/python}"
[ -x "$PIP_PYTHON" ] || PIP_PYTHON=python3
# keep in step with targets/tvm/pyproject.toml (apache-tvm-ffi 0.1.15 segfaults in MetaSchedule)
WHEELS=(apache-tvm-ffi==0.1.14.post1 apache-tvm==0.27.0.post1 "numpy<2.5" "ml_dtypes>=0.5" typing_extensions)
DEBS=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6 zlib1g
      libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libcrypt1 libuuid1 libsqlite3-0
      libncursesw6 libtinfo6 libreadline8 libzstd1)
STAMP="$SYSROOT/.edgest-sysroot-complete"

say() { echo "aarch64-sysroot: $*"; }
is_root() { [ "$(id -u)" = 0 ]; }

# 1. qemu-aarch64
if ! command -v qemu-aarch64 >/dev/null; then
    if is_root; then
        say "installing qemu-user (apt-get)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null
    else
        say "qemu-aarch64 not found: install it with 'sudo apt-get install qemu-user', then rerun"; exit 1
    fi
fi
# 2. the cross linker edgest uses to link aarch64 libraries
if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
    if is_root; then
        say "installing g++-aarch64-linux-gnu (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++-aarch64-linux-gnu >/dev/null
    else
        say "aarch64-linux-gnu-g++ not found: install it with 'sudo apt-get install g++-aarch64-linux-gnu'"; exit 1
    fi
fi

if [ -f "$STAMP" ]; then
    say "ready: $SYSROOT (delete it to rebuild)"; exit 0
fi
mkdir -p "$SYSROOT"

# 3. Debian arm64 python3.11 and libraries, unpacked (not installed) into the sysroot
if [ ! -x "$SYSROOT/usr/bin/python3.11" ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        if is_root; then
            dpkg --add-architecture arm64
        else
            say "apt has no arm64 architecture: run 'sudo dpkg --add-architecture arm64 && sudo apt-get update', then rerun"; exit 1
        fi
    fi
    if ! apt-cache show python3.11-minimal:arm64 >/dev/null 2>&1; then
        if is_root; then apt-get update -qq; else say "run 'sudo apt-get update' (arm64 lists missing), then rerun"; exit 1; fi
    fi
    debs="$(mktemp -d)" && chmod 755 "$debs"  # apt-get download drops to the _apt user
    trap 'rm -rf "$debs"' EXIT
    say "downloading ${#DEBS[@]} Debian arm64 packages"
    (cd "$debs" && apt-get download -qq "${DEBS[@]/%/:arm64}")
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
fi

# 4. aarch64 wheels from PyPI
say "installing aarch64 wheels: ${WHEELS[*]}"
"$PIP_PYTHON" -m pip install -q --disable-pip-version-check --upgrade --target "$SYSROOT/site" \
    --platform manylinux_2_28_aarch64 --python-version 3.11 --implementation cp --only-binary=:all: "${WHEELS[@]}"

# 5. smoke test: the emulated interpreter imports TVM's runtime
say "checking: qemu-aarch64 python3.11 -c 'import tvm'"
TVM_USE_RUNTIME_LIB=1 PYTHONPATH="$SYSROOT/site" qemu-aarch64 -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11" -c \
    "import platform, tvm; from tvm.runtime import vm; print(platform.machine(), 'tvm', tvm.__version__)"
touch "$STAMP"
say "ready: $SYSROOT"
