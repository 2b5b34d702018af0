#!/usr/bin/env bash
# Runs on a GPU machine, from the root of a checkout holding .gpu/ and .gpu-fixtures/ (made
# by scripts/gpu-pack.sh; the script itself travels as .gpu/gpu-check.sh):
#   bash .gpu/gpu-check.sh
# Prints the machine (nvidia-smi, print only), runs the CUDA tests (op agreement and end
# to end), then optionally a memcheck pass and benchmarks. Exits non-zero if a test fails.
# env: GPU_CHECK_FILTER   gtest filter for the tests (default: all)
#      GPU_CHECK_SANITIZE=1  also run the op tests under compute-sanitizer memcheck
#      GPU_CHECK_BENCH=1  generate benchmark models (shimmy-gen-model) and run shimmy-cuda-bench
#                         and shimmy bench on them; the copy bandwidth of the same call and
#                         each model's single-stream share of it and 16-stream ratio, and
#                         the time from start to the first token of `shimmy run`
#      GPU_CHECK_BENCH_SHAPES  "shape:type ..." (default "tinyllama:Q4_0")
#      OUT                folder for logs (default /tmp/gpu-check)
set -uo pipefail
gpu=$(cd "$(dirname "$0")" && pwd)
if [ -f "$gpu/bundle.tar.xz" ]; then  # gpu-pack.sh ships the binaries packed
  rm -rf /tmp/shimmy-gpu && mkdir -p /tmp/shimmy-gpu
  tar -C /tmp/shimmy-gpu -xJf "$gpu/bundle.tar.xz" || { echo "gpu-check: cannot unpack"; exit 1; }
  gpu=/tmp/shimmy-gpu
fi
fix=${SHIMMY_GPU_FIXTURES:-$(pwd)/.gpu-fixtures}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
export LD_LIBRARY_PATH="$gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SHIMMY_SHARED_DIR="$fix"
export SHIMMY_CUDA_PLUGIN="$gpu/libshimmy-backend-cuda.so"
status=0
summary=()

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem --format=csv 2>&1 ||
  echo "nvidia-smi: not available"
echo "$(uname -srm); $(grep -m1 PRETTY_NAME /etc/os-release 2>/dev/null); $(ldd --version 2>&1 | head -1)"

echo "== shimmy"
"$gpu/shimmy" --version 2>&1 | head -3
"$gpu/shimmy" doctor 2>&1 | head -20 || true

echo "== weight matmul tests (every type, m 1..512)"
"$gpu/shimmy_cuda_mm_tests" 2>&1 | tail -3 | tee "$out/mm-tests.log"
[ "${PIPESTATUS[0]}" -ne 0 ] && status=1
summary+=("mm tests: $(grep -E 'PASSED|FAILED' "$out/mm-tests.log" | tr '\n' ' ')")

echo "== tests"
t0=$(date +%s)
"$gpu/shimmy_cuda_tests" --gtest_filter="${GPU_CHECK_FILTER:-*}" 2>&1 | tee "$out/tests.log"
rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] && status=1
summary+=("tests: exit $rc in $(( $(date +%s) - t0 )) s; $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/tests.log" | sed 's/ tests\?, listed below:\?//' | tr '\n' ' ')")
while read -r line; do summary+=("$line"); done < <(grep -E '^\[(cuda-vs-cpu|cuda-slices|cuda-parallel|cuda-flash|attention)\]|^\[cuda\] stories|^\[  FAILED  \]' "$out/tests.log")

echo "== the shimmy CLI on the GPU (plugin found next to the binary)"
want=", there was a little girl named Lily. She loved to play outside in the park. One day, she saw"
got=$("$gpu/shimmy" run -m "$fix/models/stories260K.gguf" -p "Once upon a time" -n 32 --temp 0 \
  --gpu-backend cuda --gpu-layers all 2> "$out/run.err")
if [ "$got" = "$want" ]; then summary+=("cli run, all layers on cuda: stories text equal");
else status=1; summary+=("cli run, all layers on cuda: MISMATCH: '$got'"); cat "$out/run.err"; fi
grep -m2 -E "cuda:0|cpu:" "$out/run.err" | while read -r l; do echo "  $l"; done
got=$("$gpu/shimmy" run -m "$fix/models/stories260K.gguf" -p "Once upon a time" -n 32 --temp 0 \
  --gpu-backend cuda --gpu-layers 3 2> "$out/run-half.err")
if [ "$got" = "$want" ]; then summary+=("cli run, 3 of 5 layers on cuda: stories text equal");
else status=1; summary+=("cli run, 3 of 5 layers on cuda: MISMATCH: '$got'"); cat "$out/run-half.err"; fi
"$gpu/shimmy" show --placement "$fix/models/t-llama-Q4_K_M.gguf" 2>&1 | head -8

if [ "${GPU_CHECK_SANITIZE:-0}" = 1 ]; then
  echo "== compute-sanitizer memcheck (op tests and one model)"
  san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
  if [ -n "$san" ]; then
    "$san" --tool memcheck --error-exitcode 9 "$gpu/shimmy_cuda_tests" \
      --gtest_filter='CudaOps.*:Rope/*:Shapes/*:Models/CudaModel.*/stories260K:CudaEndToEnd.Parallel*' \
      > "$out/memcheck.log" 2>&1
    rc=$?  # 9: memcheck found errors; 1: a test failed (reported above)
    tail -3 "$out/memcheck.log"
    grep -q 'ERROR SUMMARY: 0 errors' "$out/memcheck.log" || status=1
    summary+=("memcheck: $(grep -m1 'ERROR SUMMARY' "$out/memcheck.log" || echo 'no summary') (exit $rc)")
  else
    summary+=("memcheck: compute-sanitizer not found")
  fi
fi

if [ "${GPU_CHECK_BENCH:-0}" = 1 ]; then
  echo "== benchmarks"
  "$gpu/shimmy-cuda-bench" --ops 2>&1 | tee "$out/bench-ops.log"
  [ "${PIPESTATUS[0]}" -ne 0 ] && status=1
  while read -r line; do summary+=("ops: $line"); done < "$out/bench-ops.log"
  # The memory ceiling the decode figures are measured against, in this same call.
  copy=$("$gpu/shimmy-cuda-mm-bench" --copy 2>&1 | awk '/copy:/ {print $3}')
  summary+=("device-to-device copy: ${copy:-?} GB/s (read + write)")
  models=/tmp/shimmy-bench-models
  mkdir -p "$models"
  for st in ${GPU_CHECK_BENCH_SHAPES:-tinyllama:Q4_0}; do
    shape=${st%%:*} type=${st##*:}
    f="$models/$shape-$type.gguf"
    [ -f "$f" ] || "$gpu/shimmy-gen-model" --shape "$shape" --type "$type" --out "$f" \
      --vocab-from "$fix/vocab/ggml-vocab-llama-spm.gguf" --threads "$(nproc)" > /dev/null
    "$gpu/shimmy-cuda-bench" "$f" --pp 512 --tg 128 --par 8 2>&1 | tee "$out/bench-$shape-$type.log"
    [ "${PIPESTATUS[0]}" -ne 0 ] && status=1
    # Start to the first generated token, model load included (the file is in the page
    # cache by now): one `shimmy run` of one token, timed from outside.
    t0=$(date +%s.%N)
    "$gpu/shimmy" run -m "$f" -p Hello -n 1 --temp 0 --gpu-backend cuda > /dev/null 2> "$out/ttft-$shape-$type.log"
    t1=$(date +%s.%N)
    summary+=("bench $shape-$type: start to first token $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s;$(grep -o ' ready in .*' "$out/ttft-$shape-$type.log" | head -1)")
    # The product path: shimmy bench with the plugin (placement, tok/s, bandwidth share).
    "$gpu/shimmy" bench -m "$f" -p 512 -n 128 -r 3 --gpu-backend cuda 2>&1 | tee -a "$out/bench-$shape-$type.log"
    "$gpu/shimmy" bench -m "$f" -p 16 -n 64 -r 2 --parallel 16 --gpu-backend cuda 2>&1 | tail -2 | tee -a "$out/bench-$shape-$type.log"
    while read -r line; do summary+=("bench $shape-$type: $line"); done < "$out/bench-$shape-$type.log"
    # tg128: tok/s and the weight GB/s against the copy; 16 streams against one.
    summary+=("bench $shape-$type: $(awk -v copy="${copy:-0}" '
      /^tg128/ { tok = $2; for (i = 1; i < NF; ++i) if ($(i + 1) == "GB/s;") gbs = $i }
      /^tg64/ && /aggregate/ { par = $2 }
      END {
        pct = 0
        if (copy > 0) pct = 100 * gbs / copy
        printf "single %.1f tok/s, weights at %.1f GB/s = %.2f %% of copy", tok, gbs, pct
        if (par > 0 && tok > 0) printf "; 16 streams %.1f tok/s = %.2fx single", par, par / tok
      }' "$out/bench-$shape-$type.log")")
  done
fi

echo "== summary"
printf '%s\n' "${summary[@]}"
echo "gpu-check: $([ "$status" = 0 ] && echo PASS || echo FAIL)"
exit "$status"
