#!/usr/bin/env bash
# Runs each fuzz target for a while (default 60 s each; FUZZ_SECONDS to change) and prints how
# many inputs it tried. Not part of the suite. Needs cargo-fuzz (`cargo install cargo-fuzz`);
# libFuzzer's compiler flags are nightly-only, which RUSTC_BOOTSTRAP allows on this stable
# toolchain. The corpus stays in fuzz/corpus/<target> between runs, seeded from
# fuzz/seeds/<target>; crashes land in fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-60}"
if (($#)); then targets=("$@"); else targets=(media_datagram signaling_message capture_file config_file api_body attachment_file session_description turn_stream); fi
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  # Documented examples give the fuzzer valid inputs to mutate from (fuzz/seeds/<target>).
  if [ -d "fuzz/seeds/$t" ]; then cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true; fi
  log="target/fuzz-$t.log"
  mkdir -p target
  (cd fuzz && cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=4096) 2>&1 | tee "$log" | grep -E "^(#[0-9]+ +DONE|==|SUMMARY)" || true
  runs=$(grep -Eo "Done [0-9]+ runs" "$log" | tail -1 || true)
  echo "$t: ${runs:-no summary, see $log}"
done
