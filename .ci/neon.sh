#!/usr/bin/env bash
# NEON kernels under qemu: cross-compile fovea-kernels to aarch64 with Debian's rustc-web (an arm64
# standard library; rustup's toolchain stays the default for everything else) and run its tests twice:
#   -cpu max         NEON + dotprod: the `sdot` kernels are detected and tested;
#   -cpu cortex-a72  plain ARMv8.0 (Raspberry Pi 4): `sdot` raises SIGILL there, so the run-time
#                    detection must pick the plain NEON table (asserted via FOVEA_EXPECT_DOTPROD).
# Recipe and measurements: shared/PLATFORM.md. Idempotent: a machine that has the packages skips apt.
set -euo pipefail
cd "$(dirname "$0")/.."

header() { printf '\n==== neon: %s ====\n' "$*"; }

PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user rustc-web libstd-rust-web-dev:arm64)

header "cross toolchain"
installed() {
    dpkg --print-foreign-architectures | grep -qx arm64 || return 1
    local p
    for p in "${PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || return 1
    done
}
if installed; then
    echo "already installed: ${PACKAGES[*]}"
else
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi

# rustc-web must be at least the workspace's rust-version (cargo also refuses an older one).
need=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml)
have=$(/usr/bin/rustc --version | awk '{print $2}')
echo "/usr/bin/rustc $have (workspace needs >= $need); cargo $(cargo --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
    echo "error: /usr/bin/rustc $have is older than rust-version $need" >&2
    exit 1
fi

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# A separate target dir: the two compilers would otherwise invalidate each other's build scripts.
TEST=(cargo test -p fovea-kernels --release --target aarch64-unknown-linux-gnu --target-dir target/aarch64)

header "build (aarch64, release)"
"${TEST[@]}" --no-run

# `-L /`, not `-L /usr/aarch64-linux-gnu`: the latter mixes two glibc builds and thread spawns hang.
for cpu in max cortex-a72; do
    expect=1
    [ "$cpu" = cortex-a72 ] && expect=0
    header "tests under qemu-aarch64 -cpu $cpu (FOVEA_EXPECT_DOTPROD=$expect)"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L / -cpu $cpu" \
        FOVEA_EXPECT_DOTPROD=$expect "${TEST[@]}"
done
header "ok"
