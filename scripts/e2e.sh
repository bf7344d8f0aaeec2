#!/usr/bin/env bash
# Browser end-to-end tests: two headless Chromium pages publish (simulcast) through a real
# server and must see each other's video. Installs what is missing (Debian's chromium, the
# Node packages pinned in tests/e2e/package-lock.json), then runs the test.
# Expects the server binary built (scripts/test.sh runs cargo test, which builds
# target/debug/huizhen); HUIZHEN_BIN points elsewhere, e.g. at a release build.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "playwright-core needs Node 20 or later; this is $(node --version)" >&2
  exit 1
fi

bin="${HUIZHEN_BIN:-target/debug/huizhen}"
if [ ! -x "$bin" ]; then
  echo "no server binary at $bin: run 'cargo build' (or scripts/test.sh) first, or set HUIZHEN_BIN" >&2
  exit 1
fi

# playwright-core only: it drives the system Chromium and downloads no browser.
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error) >&2

HUIZHEN_BIN="$(realpath "$bin")" node tests/e2e/media.test.mjs
