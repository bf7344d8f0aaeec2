#!/usr/bin/env bash
# Runs the server on the embedded store with demo sites and users; open http://127.0.0.1:8080/
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -p huizhen -- serve --demo "$@"
