#!/usr/bin/env bash
# Installs the MSI under Wine (Debian's wine, wine64) and checks what a Windows user gets;
# prints "N passed, N failed" and exits non-zero on any failure. Run after
# packaging/build-msi.sh; it builds a second, newer MSI itself to test the upgrade. Needs
# mingw-w64 (for the test-only ProcessPrng shim), msitools, skopeo and docker (to make a test
# image). Everything lives in a fresh WINEPREFIX; its wineserver is stopped at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

. packaging/lib.sh

msi=$(ls -t target/packages/semdock-*-x64.msi | head -1)
version=$(basename "$msi" | sed 's/^semdock-\(.*\)-x64.msi$/\1/')
work=$(mktemp -d)
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEARCH=win64
cleanup() {
  wineserver -k >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
wine wineboot --init >/dev/null 2>&1
wineserver -w # the first boot of a prefix finishes in the background
# A persistent wineserver: by default it shuts the prefix down a few seconds after the last
# non-service process exits, and services.exe then terminates every service (Wine 8,
# server/process.c and programs/services). Windows keeps services running with no one
# logged in; so must the test, or a push that runs while no wine command does is cut.
wineserver -p
wine wineboot >/dev/null 2>&1
programdata="$WINEPREFIX/drive_c/ProgramData/semdock"
exe="$WINEPREFIX/drive_c/Program Files/semdock/semdock.exe"

# Wine 8 lacks ProcessPrng (Rust's std needs it): a test-only shim, never in the MSI.
x86_64-w64-mingw32-gcc -O2 -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
  packaging/windows/processprng.c packaging/windows/bcryptprimitives.def -ladvapi32
check "the shim is not in the MSI" sh -c "! msiinfo export '$msi' File | grep -qi bcryptprimitives"
kept_bits() { # both components carry Permanent (0x10) and NeverOverwrite (0x80)
  local n=0 attributes
  for c in Config DataDir; do
    attributes=$(msiinfo export "$msi" Component | awk -F'\t' -v c="$c" '$1 == c { print $4 }')
    [ -n "$attributes" ] && [ $((attributes & 0x90)) -eq $((0x90)) ] && n=$((n + 1))
  done
  [ "$n" -eq 2 ]
}
check "config and data components are Permanent and NeverOverwrite" kept_bits

# An unattended install may pre-seed its config: the port is this test's, on 127.0.0.1.
port=$(free_port)
mkdir -p "$programdata"
sed "s/0.0.0.0:5000/127.0.0.1:$port/" packaging/wix/semdock.toml >"$programdata/semdock.toml"
install() { # install MSI: msiexec, with its log shown when it fails
  wine msiexec /i "$(winepath -w "$1")" /qn /l*v 'C:\msi.log' || {
    iconv -f utf-16 -t utf-8 "$WINEPREFIX/drive_c/msi.log" 2>/dev/null | grep -a -i -E 'error|return value 3' | tail -20
    return 1
  }
}
check "msiexec /i /qn" install "$msi"
check "exe under Program Files" test -f "$exe"
check "pre-seeded config kept" grep -q "127.0.0.1:$port" "$programdata/semdock.toml"
running() { wine sc query semdock | grep -q "STATE.*RUNNING"; }
wait_running() { for _ in $(seq 1 100); do running && return 0; sleep 0.3; done; return 1; }
check "service semdock is RUNNING" wait_running
answers() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")" = 401 ]; }
wait_answers() { for _ in $(seq 1 100); do answers && return 0; sleep 0.3; done; return 1; }
check "registry answers on 127.0.0.1:$port" wait_answers
password=$(tr -d '\r\n' <"$programdata/data/initial-admin-password" 2>/dev/null)
check "initial admin password written under ProgramData" test -n "$password"
check "the service logs to ProgramData\\semdock\\logs" sh -c "grep -q 'semdock listening' '$programdata'/logs/semdock.*.log"

# Push an image with skopeo, pull it back.
mkdir -p "$work/image"
head -c 100000 /dev/urandom >"$work/image/payload.bin"
printf 'FROM scratch\nCOPY payload.bin /payload.bin\n' >"$work/image/Dockerfile"
tag="semdock-msi-test:$port"
docker build -q --no-cache -t "$tag" "$work/image" >/dev/null && docker save -o "$work/image.tar" "$tag"
docker rmi -f "$tag" >/dev/null 2>&1
ref="docker://127.0.0.1:$port/library/win:1.0.0"
creds=(--creds "admin:$password" --tls-verify=false)
check "skopeo copy pushes to the service" skopeo copy --dest-creds "admin:$password" --dest-tls-verify=false \
  "docker-archive:$work/image.tar" "$ref"
digest() { skopeo inspect "${creds[@]}" --format '{{.Digest}}' "$ref"; }
pushed=$(digest 2>/dev/null)
check "skopeo copy pulls it back" skopeo copy --src-creds "admin:$password" --src-tls-verify=false "$ref" "dir:$work/pulled"
check "pulled manifest has the pushed digest" sh -c "[ -n '$pushed' ] && [ sha256:\$(sha256sum '$work/pulled/manifest.json' | cut -d' ' -f1) = '$pushed' ]"

check "the service was never restarted" sh -c "[ \$(grep -c 'semdock listening' '$programdata'/logs/semdock.*.log) -eq 1 ]"

# Stop and start keep the data; the stop is graceful.
check "sc stop" wine sc stop semdock
stopped() { for _ in $(seq 1 100); do wine sc query semdock | grep -q "STATE.*STOPPED" && return 0; sleep 0.3; done; return 1; }
check "service reaches STOPPED" stopped
check "stopped service released its database (offline CLI opens it)" sh -c \
  "wine '$exe' --config 'C:\\ProgramData\\semdock\\semdock.toml' feed list | grep -q library"
check "registry gone while stopped" sh -c "! curl -s -o /dev/null http://127.0.0.1:$port/v2/"
check "sc start" wine sc start semdock
check "service RUNNING again" wait_running
check "registry answers again" wait_answers
check "image still there after restart" sh -c "[ -n '$pushed' ] && [ \"\$(skopeo inspect --creds 'admin:$password' --tls-verify=false --format '{{.Digest}}' '$ref')\" = '$pushed' ]"

# Upgrade to a newer MSI with an edited config: the edit and the data are kept.
echo "# edited by the administrator" >>"$programdata/semdock.toml"
newer_version="${version%.*}.$(( ${version##*.} + 1 ))"
check "build a newer MSI ($newer_version)" packaging/build-msi.sh "$newer_version"
newer="target/packages/semdock-$newer_version-x64.msi"
check "msiexec /i newer /qn upgrades" install "$newer"
check "one semdock product installed, the newer one" sh -c "
  wine reg query 'HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall' /s 2>/dev/null | tr -d '\r' > '$work/uninstall.txt';
  [ \$(grep -c 'DisplayName.*semdock' '$work/uninstall.txt') -eq 1 ] && grep -q 'DisplayVersion.*$newer_version' '$work/uninstall.txt'"
check "edited config kept across the upgrade" grep -q "edited by the administrator" "$programdata/semdock.toml"
check "service RUNNING after the upgrade" wait_running
check "registry answers after the upgrade" wait_answers
check "image still there after the upgrade" sh -c "[ -n '$pushed' ] && [ \"\$(skopeo inspect --creds 'admin:$password' --tls-verify=false --format '{{.Digest}}' '$ref')\" = '$pushed' ]"

# The service's process in this prefix (the unix pids of wine processes running our exe).
service_pids() {
  local pid
  for pid in $(pgrep -f 'semdock\.exe.* service$'); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "WINEPREFIX=$WINEPREFIX" && echo "$pid"
  done
}
process_ends() { for _ in $(seq 1 100); do [ -z "$(service_pids)" ] && return 0; sleep 0.3; done; return 1; }

# Uninstall with the service running stops and removes it.
check "service process found while running" test -n "$(service_pids)"
check "msiexec /x /qn with the service running" wine msiexec /x "$(winepath -w "$newer")" /qn
check "service removed" sh -c "! wine sc query semdock | grep -q STATE"
check "its process ends" process_ends
check "config kept after uninstall" test -f "$programdata/semdock.toml"
check "data kept after uninstall" test -f "$programdata/data/meta.redb"

# Uninstall removes the exe. Windows Installer waits for the stop before it removes files
# (ServiceControl Wait="yes"); Wine 8's msi sends the stop and goes straight on
# (dlls/msi/action.c, stop_service), so the exe is deleted only if the process has already
# exited and the test would race. So here the service is stopped first, as Windows
# Installer itself would, and the uninstall then has to remove every file it installed.
check "reinstall" install "$newer"
check "service RUNNING after the reinstall" wait_running
stop_service() { wine sc stop semdock >/dev/null && process_ends; }
check "sc stop, then the process ends" stop_service
check "msiexec /x /qn" wine msiexec /x "$(winepath -w "$newer")" /qn
check "exe removed" test ! -e "$exe"
check "install folder removed" test ! -e "$(dirname "$exe")"
check "data still there after a second uninstall" test -f "$programdata/data/meta.redb"
rm -f "$newer"

report
