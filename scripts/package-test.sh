#!/usr/bin/env bash
# The Debian package in a throwaway Debian 12 root (issue 17): install (user, directories,
# permissions, unit enabled), first start (the one-time admin password printed, as the journal
# shows it), upgrade (data and the administrator's edit of the configuration kept), remove
# (data and configuration kept), purge answered "keep" (data kept), purge answered "delete"
# (data gone); then operations.md's "county hospital" walk on a fresh install: HTTPS with a
# trial certificate and TURN switched on in the configuration, `huizhen doctor`, the first
# sign-in over HTTPS and the administrator's own password.
# Not part of the suite: it downloads a Debian root (~190 MB) and needs root.
#
#   bash scripts/package-test.sh                 # release build, as shipped
#   PROFILE=dev bash scripts/package-test.sh     # the debug build (quicker to make)
#   ROOT_TARBALL=/tmp/debroot.tar bash scripts/package-test.sh   # reuse a root made earlier by
#     mmdebstrap --variant=apt --include=systemd,adduser,ca-certificates bookworm /tmp/debroot.tar
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}

if [ "$(id -u)" -ne 0 ]; then echo "run as root (chroot, mounts)" >&2; exit 2; fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
command -v mmdebstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap

work=$(mktemp -d /tmp/hz-package.XXXXXX)
root="$work/root"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

pass() { echo "  ok   $*"; }
fail() { echo "  FAIL $*"; exit 1; }
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
expect() { # expect "<what>" <expected> <command...>
  local what=$1 want=$2; shift 2
  local got; got=$("$@" 2>&1 || true)
  [ "$got" = "$want" ] && pass "$what: $got" || fail "$what: got '$got', want '$want'"
}

echo "== packages (profile $profile): 0.1.0-1 and 0.1.0-2"
cargo deb -p huizhen --profile "$profile" --deb-revision 1 -o "$work/huizhen-1.deb" >/dev/null
cargo deb -p huizhen --profile "$profile" --no-build --deb-revision 2 -o "$work/huizhen-2.deb" >/dev/null
dpkg-deb --info "$work/huizhen-1.deb" | grep -E "Package|Version|Depends" | sed 's/^/  /'

echo "== a Debian 12 root"
mkdir -p "$root"
if [ -n "${ROOT_TARBALL:-}" ]; then
  tar -xf "$ROOT_TARBALL" -C "$root"
else
  mmdebstrap --quiet --variant=apt --include=systemd,adduser,ca-certificates bookworm "$root" http://deb.debian.org/debian
fi
cp "$work"/huizhen-*.deb "$root/tmp/"
mount -t proc proc "$root/proc"

echo "== install"
in_root dpkg -i /tmp/huizhen-1.deb
expect "system user" "huizhen:/var/lib/huizhen:/usr/sbin/nologin" in_root sh -c 'getent passwd huizhen | cut -d: -f1,6,7'
expect "data directory" "700 huizhen huizhen" in_root stat -c '%a %U %G' /var/lib/huizhen
expect "configuration" "640 root huizhen" in_root stat -c '%a %U %G' /etc/huizhen/huizhen.toml
expect "configuration directory" "750 root huizhen" in_root stat -c '%a %U %G' /etc/huizhen
expect "unit enabled" "/lib/systemd/system/huizhen.service" readlink "$root/etc/systemd/system/multi-user.target.wants/huizhen.service"
expect "unit runs the packaged binary" "ExecStart=/usr/bin/huizhen serve --config /etc/huizhen/huizhen.toml --data-dir /var/lib/huizhen" \
  grep '^ExecStart=' "$root/lib/systemd/system/huizhen.service"

# The server as the unit starts it (user, config, data dir): stdout is what the journal holds.
start() {
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  : > "$work/out"
  # chroot, env and setpriv each exec the next: $! is the server itself.
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin LANG=C.UTF-8 HUIZHEN_MEDIA__UDP_PORT=0 setpriv --reuid huizhen --regid huizhen --clear-groups \
    /usr/bin/huizhen serve --config /etc/huizhen/huizhen.toml --data-dir /var/lib/huizhen --listen "127.0.0.1:$port" \
    > "$work/out" 2>&1 &
  server=$!
  for _ in $(seq 1 150); do
    grep -q "Huizhen is running at" "$work/out" && break
    sleep 0.2
  done
  grep -q "Huizhen is running at" "$work/out" || { cat "$work/out"; fail "the server did not start"; }
  expect "ready" '{"status":"ready"}' curl -s "http://127.0.0.1:$port/readyz"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

echo "== first start"
start
grep -A3 "First start" "$work/out" | sed 's/password: .*/password: <one-time>/; s/^/  | /'
grep -q "password: " "$work/out" && pass "one-time admin password printed (journalctl -u huizhen -o cat | grep -A3 'First start')" || fail "no admin password"
expect "store made, the server's own" "600 huizhen" in_root stat -c '%a %U' /var/lib/huizhen/huizhen.redb
store_sum=$(sha256sum "$root/var/lib/huizhen/huizhen.redb" | cut -d' ' -f1)

echo "== upgrade to 0.1.0-2, the configuration edited by the administrator"
echo '# edited by the hospital administrator' >> "$root/etc/huizhen/huizhen.toml"
in_root dpkg -i /tmp/huizhen-2.deb
expect "version" "0.1.0-2" in_root dpkg-query -W -f '${Version}' huizhen
expect "edited configuration kept" "# edited by the hospital administrator" tail -1 "$root/etc/huizhen/huizhen.toml"
expect "store kept" "$store_sum" sh -c "sha256sum '$root/var/lib/huizhen/huizhen.redb' | cut -d' ' -f1"
start
grep -q "First start" "$work/out" && fail "the upgrade lost the store: a new admin was made" || pass "no new admin: the accounts survived the upgrade"

echo "== remove"
in_root dpkg -r huizhen
[ ! -e "$root/usr/bin/huizhen" ] && pass "binary removed" || fail "binary still there"
[ -f "$root/var/lib/huizhen/huizhen.redb" ] && pass "data kept" || fail "data lost on remove"
[ -f "$root/etc/huizhen/huizhen.toml" ] && pass "configuration kept" || fail "configuration lost on remove"

echo "== purge, answered: keep the data"
echo "huizhen huizhen/purge_data boolean false" | in_root debconf-set-selections
in_root dpkg --purge huizhen
[ ! -e "$root/etc/huizhen" ] && pass "configuration purged" || fail "configuration left"
[ -f "$root/var/lib/huizhen/huizhen.redb" ] && pass "data kept, as answered" || fail "data removed though the answer was keep"

echo "== install again (the kept data is used), purge answered: delete the data"
in_root dpkg -i /tmp/huizhen-2.deb
start
grep -q "First start" "$work/out" && fail "the kept data was not used" || pass "the kept store is used again"
echo "huizhen huizhen/purge_data boolean true" | in_root debconf-set-selections
in_root dpkg --purge huizhen
[ ! -e "$root/var/lib/huizhen" ] && pass "data deleted, as answered" || fail "data left though the answer was delete"
expect "question forgotten" "" in_root sh -c 'debconf-show huizhen'

echo "== a county hospital: the package, HTTPS (trial certificate) and TURN on, the first sign-in"
in_root dpkg -i /tmp/huizhen-2.deb >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); turn_port=$(free_port); turns_port=$(free_port)
# What the IT person edits in /etc/huizhen/huizhen.toml (operations.md, "A county hospital").
python3 - "$root/etc/huizhen/huizhen.toml" "$port" "$turn_port" "$turns_port" <<'PY'
import sys
path, port, turn, turns = sys.argv[1:]
lines = open(path).read().split("\n")
section = ""
for i, line in enumerate(lines):
    if line.startswith("["):
        section = line.strip()
    key = line.split("=")[0].strip()
    if section == "" and key == "listen":
        lines[i] = f'listen = "0.0.0.0:{port}"'
    elif section == "[tls]" and key == "mode":
        lines[i] = 'mode = "self-signed"'
    elif section == "[tls]" and key == "names":
        lines[i] = 'names = ["hz.county.test", "127.0.0.1"]'
    elif section == "[turn]" and key == "enabled":
        lines[i] = "enabled = true"
    elif section == "[turn]" and key == "listen":
        lines[i] = f'listen = "0.0.0.0:{turn}"'
    elif section == "[turn]" and key == "listen_tls":
        lines[i] = f'listen_tls = "0.0.0.0:{turns}"'
open(path, "w").write("\n".join(lines))
PY
echo "  -- huizhen doctor --lang en (before the first start):"
chroot "$root" env -i PATH=/usr/sbin:/usr/bin LANG=C.UTF-8 setpriv --reuid huizhen --regid huizhen --clear-groups \
  /usr/bin/huizhen doctor --config /etc/huizhen/huizhen.toml --data-dir /var/lib/huizhen --lang en | sed 's/^/  | /' || true
: > "$work/out"
chroot "$root" env -i PATH=/usr/sbin:/usr/bin LANG=C.UTF-8 setpriv --reuid huizhen --regid huizhen --clear-groups \
  /usr/bin/huizhen serve --config /etc/huizhen/huizhen.toml --data-dir /var/lib/huizhen > "$work/out" 2>&1 &
server=$!
for _ in $(seq 1 150); do grep -q "ignore-certificate-errors-spki-list" "$work/out" && break; sleep 0.2; done
grep -q "Huizhen is running at https://" "$work/out" && pass "HTTPS on 0.0.0.0:$port" || { cat "$work/out"; fail "no HTTPS"; }
grep -E "fingerprint|spki" -A1 "$work/out" | sed 's/^/  | /'
ca="$root/var/lib/huizhen/tls/self-signed.pem"
https() { curl -s --cacert "$ca" "$@"; }
# A debug build serves the web client from the source tree (not in the root): only the release
# build, as packaged, has it inside.
if [ "$profile" = release ]; then
  expect "the app over HTTPS, trusted by its certificate" "200" https -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/"
else
  expect "HTTPS, trusted by its certificate (debug build: no app inside)" "200" https -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/healthz"
fi
admin_pw=$(sed -n 's/^ *password: //p' "$work/out")
token=$(https -H 'content-type: application/json' -d "{\"username\":\"admin\",\"password\":\"$admin_pw\"}" "https://127.0.0.1:$port/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
expect "first sign-in asks for an own password" "True" sh -c "curl -s --cacert '$ca' -H 'authorization: Bearer $token' https://127.0.0.1:$port/v1/me | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"must_change_password\"])'"
expect "own password set" "200" https -o /dev/null -w '%{http_code}' -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"old_password\":\"$admin_pw\",\"new_password\":\"county-hospital-own-password-1\"}" "https://127.0.0.1:$port/v1/me/password"
expect "TURN listens (UDP)" "1" sh -c "ss -lun | grep -c ':$turn_port '"
expect "TURN over TLS listens" "1" sh -c "ss -ltn | grep -c ':$turns_port '"
kill "$server"; wait "$server" 2>/dev/null || true; server=""

echo "package test: passed"
