#!/usr/bin/env bash
# Builds the CUDA plugin, its tests and benchmark here, and packs everything a GPU machine
# needs into two git-ignored folders of a checkout, for scripts/gpu-check.sh to run there:
#   .gpu/           gpu-check.sh and bundle.tar.xz: shimmy, libshimmy-backend-cuda.so,
#                   shimmy_cuda_tests, shimmy_cuda_mm_tests, shimmy-cuda-bench,
#                   shimmy-cuda-mm-bench, shimmy-gen-model and lib/ (the shared libraries
#                   they need beyond glibc, so the machine needs only its driver)
#   .gpu-fixtures/  models/ (a subset of ../shared/models), reference/, vocab/ (for
#                   shimmy-gen-model's benchmark models)
# The device tool sends the checkout it was started in plus carried paths; run there:
#   carry [".gpu", ".gpu-fixtures"], command "bash .gpu/gpu-check.sh"
#
# usage: scripts/gpu-pack.sh [DEST_CHECKOUT]   (default: the main worktree of this repo)
# env:   BUILD_DIR (default build-cuda), SHIMMY_CUDA_ARCHS (default: the CMake default)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=$(cd "$root/../shared" && pwd)
dest=${1:-$(git worktree list --porcelain | awk '/^worktree /{print $2; exit}')}
build=${BUILD_DIR:-build-cuda}
limit_mib=60

# ---- build ---------------------------------------------------------------------------
cmake_args=(-S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
            -DCMAKE_CUDA_COMPILER=${CMAKE_CUDA_COMPILER:-/usr/local/cuda/bin/nvcc})
[ -n "${SHIMMY_CUDA_ARCHS:-}" ] && cmake_args+=(-DSHIMMY_CUDA_ARCHS="$SHIMMY_CUDA_ARCHS")
# Configure once: a re-configure bakes in the new commit id and rebuilds the whole core.
[ -f "$build/build.ninja" ] || cmake "${cmake_args[@]}" >/dev/null
# What the bundle carries: CMake target and the file it builds, relative to the build folder.
bundle=(shimmy:shimmy
        shimmy-backend-cuda:libshimmy-backend-cuda.so
        shimmy_cuda_tests:plugins/cuda/tests/shimmy_cuda_tests
        shimmy-cuda-bench:plugins/cuda/tests/shimmy-cuda-bench
        shimmy-gen-model:bench/shimmy-gen-model
        shimmy_cuda_mm_tests:plugins/cuda/src/mm/shimmy_cuda_mm_tests
        shimmy-cuda-mm-bench:plugins/cuda/src/mm/shimmy-cuda-mm-bench)
targets=() bins=()
for e in "${bundle[@]}"; do
  targets+=("${e%%:*}")
  bins+=("$build/${e#*:}")
done
nice -n 19 cmake --build "$build" -j2 --target "${targets[@]}"
if ldd "$build/shimmy" | grep -qiE 'libcuda|libcudart'; then
  echo "gpu-pack: the core binary links CUDA" >&2
  exit 1
fi

# ---- binaries and the libraries they need -----------------------------------------------
gpu="$dest/.gpu"
fix="$dest/.gpu-fixtures"
rm -rf "$gpu" "$fix"
mkdir -p "$gpu" "$fix/models" "$fix/reference" "$fix/vocab"
# The binaries travel as one xz tarball (45 MiB stripped, ~12 MiB packed), so the fixtures
# fit beside them in a call's 64 MiB; gpu-check.sh unpacks it into /tmp/shimmy-gpu.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib"
for b in "${bins[@]}"; do
  strip -o "$stage/$(basename "$b")" "$b"
  chmod +x "$stage/$(basename "$b")"
  # Everything but glibc itself (present on any Linux) travels in lib/.
  ldd "$b" | awk '/=> \//{print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*) ;;
      *) cp -L "$lib" "$stage/lib/" ;;
    esac
  done
done
tar -C "$stage" -cf - . | xz -6 -T2 > "$gpu/bundle.tar.xz"
cp scripts/gpu-check.sh "$gpu/gpu-check.sh"

# ---- fixtures: the models the tests use, their references, one vocabulary ---------------
# All 15 models do not fit one call (64 MiB): GPU_PACK_MODELS picks another set. The
# default (the stories260K types, t-llama-Q4_K_M and both t-qwen2 models, 44 MiB) fits
# beside the ~12 MiB bundle; the other t-llama models travel in a second call, e.g.
#   GPU_PACK_MODELS="stories260K t-llama-F16" scripts/gpu-pack.sh
#   GPU_PACK_MODELS="stories260K t-llama-Q2_K t-llama-Q4_0 t-llama-Q8_0" scripts/gpu-pack.sh
models=(${GPU_PACK_MODELS:-stories260K stories260K-F16 stories260K-BF16 stories260K-Q8_0 stories260K-Q5_1
        stories260K-Q4_0 stories260K-Q4_K_M stories260K-IQ4_NL t-llama-Q4_K_M t-qwen2-Q6_K
        t-qwen2-Q5_K_M})
for m in "${models[@]}"; do
  cp "$shared/models/$m.gguf" "$fix/models/"
  cp "$shared/reference/$m.json" "$fix/reference/"
done
cp "$shared/reference/thresholds.json" "$shared/reference/prompts.json" "$fix/reference/"
cp "$shared/vocab/ggml-vocab-llama-spm.gguf" "$fix/vocab/"

# ---- keep them out of git and check the size ----------------------------------------------
exclude="$(git -C "$dest" rev-parse --git-common-dir)/info/exclude"
case "$exclude" in /*) ;; *) exclude="$dest/$exclude" ;; esac
mkdir -p "$(dirname "$exclude")"
touch "$exclude"
for p in /.gpu/ /.gpu-fixtures/; do
  grep -qxF "$p" "$exclude" || echo "$p" >> "$exclude"
done
total=$(du -sbc "$gpu" "$fix" | awk 'END{print $1}')
echo "gpu-pack: $(du -sh "$gpu" | cut -f1) binaries + $(du -sh "$fix" | cut -f1) fixtures in $dest" \
     "($((total / 1048576)) MiB, limit $limit_mib MiB)"
if [ "$total" -gt $((limit_mib * 1048576)) ]; then
  echo "gpu-pack: more than $limit_mib MiB would travel" >&2
  exit 1
fi
