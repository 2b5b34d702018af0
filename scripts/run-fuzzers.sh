#!/usr/bin/env bash
# Runs every libFuzzer binary in BUILD/fuzz for SECONDS each, seeded from ../shared.
# Usage: scripts/run-fuzzers.sh BUILD SECONDS   (exit 1 on any finding)
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$root/../shared" && pwd)
status=0
for bin in "$build"/fuzz/*_fuzz; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus="$build/corpus/$name"
  seeds="$build/seeds/$name"
  mkdir -p "$corpus" "$seeds"
  case "$name" in
    gguf_fuzz)
      # Seeds: the small fixtures whole, and the headers (first 64 KiB) of the big ones.
      for f in "$shared"/models/*.gguf "$shared"/vocab/*.gguf; do
        if [ "$(stat -c %s "$f")" -le 1300000 ]; then cp -f "$f" "$seeds/"
        else head -c 65536 "$f" > "$seeds/$(basename "$f").head"; fi
      done ;;
    placement_fuzz)
      # Seeds: byte 0 picks the parser (0 --gpu-layers, 1 --tensor-split) or the planner (2).
      i=0
      for s in '\x00auto' '\x00all' '\x0022' '\x013,1' '\x010,1.5,2' '\x02\x16\x01auto'; do
        printf "$s" > "$seeds/seed$i"; i=$((i + 1))
      done ;;
    *)
      for f in "$shared"/vocab/*.inp; do cp -f "$f" "$seeds/"; done ;;
  esac
  echo "fuzzing $name for ${secs}s"
  if ! "$bin" "$corpus" "$seeds" -max_total_time="$secs" -max_len=1400000 -rss_limit_mb=2048 \
       -timeout=20 -print_final_stats=1 -artifact_prefix="$build/" 2> "$build/$name.log"; then
    echo "FAIL: $name found a problem:" >&2
    tail -60 "$build/$name.log" >&2
    status=1
  else
    grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$build/$name.log" | tail -2 || true
  fi
done
exit $status
