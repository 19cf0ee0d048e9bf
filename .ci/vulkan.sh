#!/usr/bin/env bash
# Vulkan backend on Mesa lavapipe (a software Vulkan 1.3 device; no GPU needed):
#   1. install the loader, lavapipe, glslangValidator and the validation layer;
#   2. recompile every shader (kernels/src/{ops,quant}/*.comp) and fail if the committed SPIR-V
#      under kernels/spirv/ is stale;
#   3. run the shader-vs-CPU tests and the end-to-end tests with validation on, requiring a device
#      (FOVEA_REQUIRE_VULKAN=1: a missing device is a failure here, not a skip).
# With FOVEA_VK_SETUP_ONLY=1, steps 1-2 and the no-Vulkan build check only: .ci/run does that and
# then runs the whole workspace suite (which includes the Vulkan tests) with a device required.
# Recipe and measurements: shared/PLATFORM.md. Idempotent: a machine that has the packages skips apt.
set -euo pipefail
cd "$(dirname "$0")/.."

header() { printf '\n==== vulkan: %s ====\n' "$*"; }

PACKAGES=(mesa-vulkan-drivers libvulkan1 vulkan-tools glslang-tools spirv-tools vulkan-validationlayers)

header "packages"
installed() {
    local p
    for p in "${PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || return 1
    done
}
if installed; then
    echo "already installed: ${PACKAGES[*]}"
else
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi
export VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
export FOVEA_REQUIRE_VULKAN=1

header "SPIR-V is current"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
stale=0
for src in kernels/src/ops/*.comp kernels/src/quant/*.comp; do
    name=$(basename "$src" .comp)
    glslangValidator -V --target-env vulkan1.2 -o "$out/$name.spv" "$src" >/dev/null
    spirv-val --target-env vulkan1.2 "$out/$name.spv"
    if ! cmp -s "$out/$name.spv" "kernels/spirv/$name.spv"; then
        echo "STALE: kernels/spirv/$name.spv differs from $src compiled (glslangValidator -V --target-env vulkan1.2 -o kernels/spirv/$name.spv $src)"
        stale=1
    fi
done
for spv in kernels/spirv/*.spv; do
    name=$(basename "$spv" .spv)
    if [ ! -e "kernels/src/ops/$name.comp" ] && [ ! -e "kernels/src/quant/$name.comp" ]; then
        echo "STALE: $spv has no source"
        stale=1
    fi
done
[ "$stale" = 0 ] || exit 1
echo "all $(ls kernels/spirv/*.spv | wc -l) shaders current"

header "the build without Vulkan"
cargo check -p fovea-cli --no-default-features

header "device"
vulkaninfo --summary 2>/dev/null | grep -E "deviceName|deviceType|apiVersion" || true
[ "${FOVEA_VK_SETUP_ONLY:-0}" = 1 ] && exit 0

header "shaders vs the CPU reference (validation on)"
cargo test --release -p fovea-kernels --features vulkan --test vulkan_ops

header "end to end: SmolLM2 and Gemma 3 on Vulkan vs CPU and golden (validation on)"
cargo test --release -p fovea-suite --test vulkan_e2e
