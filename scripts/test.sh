#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Rust: installs what is missing
# (redis-server for the store and outage tests, ffmpeg for the media test clip and to check
# recordings, janus for the benchmark's comparison, coturn for the TURN relay test, pebble for
# the ACME test), then checks
# formatting and lints and runs every test in the workspace. Tests start their own redis-server,
# Janus and coturn.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
# Janus VideoRoom for the side-by-side load benchmark (its smoke run is in the suite).
command -v janus >/dev/null 2>&1 || need+=(janus)
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
# Let's Encrypt's ACME test server, for the ACME certificate test.
command -v pebble >/dev/null 2>&1 || need+=(pebble)
# A Python virtual environment for the FHIR validator (tests/fhir/validate.py).
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if ((${#need[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# A CI machine builds once from clean: incremental caches would only add ~2 GB of disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

# The FHIR export is validated with fhir.resources 6.4.0, whose models are generated from the
# official FHIR 4.0.1 definitions (pydantic 1, which that release is written for).
if [ ! -x target/fhir-venv/bin/python ] || ! target/fhir-venv/bin/python -c 'import fhir.resources' 2>/dev/null; then
  python3 -m venv target/fhir-venv
  target/fhir-venv/bin/pip install -q "fhir.resources==6.4.0" "pydantic==1.10.27"
fi
# (Not HUIZHEN_…: every variable with that prefix is read as the server's configuration.)
export FHIR_VALIDATOR_PYTHON="$PWD/target/fhir-venv/bin/python"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# Browser end-to-end (Chromium + playwright-core; installs both if missing).
bash scripts/e2e.sh > target/e2e-summary.json
echo "browser end-to-end: passed (summary in target/e2e-summary.json)"
