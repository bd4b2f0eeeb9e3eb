#!/usr/bin/env bash
# Installs the Debian package for real and checks what a user gets; prints "N passed, N failed"
# and exits non-zero on any failure. Needs root, a Docker engine (DOCKER_HOST), lintian and
# systemd-analyze. Run after packaging/build-deb.sh; it builds a second, newer package itself
# to test the upgrade. systemd is not PID 1 here, so the installed binary is run by hand as
# the semdock user with the installed config, on 127.0.0.1 and a free port.
set -uo pipefail
cd "$(dirname "$0")/.."

. packaging/lib.sh
mode_owner() { [ "$(stat -c '%a %U:%G' "$1")" = "$2" ]; }

deb=$(ls -t target/packages/semdock_*_amd64.deb | head -1)
version=$(dpkg-deb -f "$deb" Version)
work=$(mktemp -d)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    server_pid=""
  fi
}
cleanup() {
  stop_server
  dpkg -P semdock >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
dpkg -P semdock >/dev/null 2>&1

check "lintian finds no errors" lintian --fail-on error "$deb"
check "dpkg -i installs $deb" dpkg -i "$deb"
check "binary /usr/bin/semdock 0755 root" mode_owner /usr/bin/semdock "755 root:root"
check "semdock --version runs" /usr/bin/semdock --version
check "config is a conffile" grep -qx " */etc/semdock/semdock.toml [0-9a-f]*" <(dpkg-query -W -f='${Conffiles}\n' semdock)
check "config 0640 root:semdock" mode_owner /etc/semdock/semdock.toml "640 root:semdock"
check "config listens on 0.0.0.0:5000" grep -qx 'listen = "0.0.0.0:5000"' /etc/semdock/semdock.toml
check "system user semdock exists" sh -c 'getent passwd semdock | grep -q ":/var/lib/semdock:"'
check "data dir 0750 semdock" mode_owner /var/lib/semdock "750 semdock:semdock"
check "systemd unit installed" test -f /lib/systemd/system/semdock.service
check "systemd-analyze verify" systemd-analyze verify /lib/systemd/system/semdock.service
check "unit is hardened" sh -c 'for k in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes StateDirectory=semdock User=semdock; do grep -qx "$k" /lib/systemd/system/semdock.service || exit 1; done'
check "service enabled for multi-user.target" test -L /etc/systemd/system/multi-user.target.wants/semdock.service
check "man page" sh -c 'zcat /usr/share/man/man1/semdock.1.gz | grep -q "container registry"'
check "man page has ENVIRONMENT, FILES, EXAMPLES" sh -c 'zcat /usr/share/man/man1/semdock.1.gz | grep -q "^.SH ENVIRONMENT" && zcat /usr/share/man/man1/semdock.1.gz | grep -q "^.SH FILES" && zcat /usr/share/man/man1/semdock.1.gz | grep -q "^.SH EXAMPLES"'
check "a man page per command" test -f /usr/share/man/man1/semdock-serve.1.gz -a -f /usr/share/man/man1/semdock-feed-create.1.gz -a -f /usr/share/man/man1/semdock-login.1.gz
check "bash completion" test -s /usr/share/bash-completion/completions/semdock
check "zsh completion" test -s /usr/share/zsh/vendor-completions/_semdock
check "changelog" test -s /usr/share/doc/semdock/changelog.Debian.gz
check "copyright" test -s /usr/share/doc/semdock/copyright

# Run the installed binary as the service would: the semdock user, the installed config.
port=$(free_port)
runuser -u semdock -- env SEMDOCK_LISTEN="127.0.0.1:$port" /usr/bin/semdock serve \
  --config /etc/semdock/semdock.toml >"$work/server.log" 2>&1 &
server_pid=$!
# Waits for the server to listen or to exit, for a minute at most: its first start hashes
# the administrator's password (argon2) and makes its first fsyncs, which take seconds on
# a loaded machine.
wait_listening() {
  for _ in $(seq 1 600); do
    grep -q "semdock listening" "$work/server.log" && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
wait_listening
check "installed server starts as semdock" grep -q "semdock listening" "$work/server.log"
check "admin password file 0600 semdock" mode_owner /var/lib/semdock/initial-admin-password "600 semdock:semdock"
password=$(cat /var/lib/semdock/initial-admin-password 2>/dev/null)
export DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG" "$work/image"
head -c 200000 /dev/urandom >"$work/image/payload.bin"
printf 'FROM scratch\nCOPY payload.bin /payload.bin\n' >"$work/image/Dockerfile"
image="localhost:$port/library/deb-test:1.0.0"
check "docker login with the initial password" sh -c "echo '$password' | docker login -u admin --password-stdin localhost:$port"
check "docker build" docker build -q --no-cache -t "$image" "$work/image"
check "docker push to the installed registry" docker push "$image"
docker rmi -f "$image" >/dev/null 2>&1
check "docker pull it back" docker pull "$image"
docker rmi -f "$image" >/dev/null 2>&1
stop_server
check "blob stored under /var/lib/semdock" sh -c 'find /var/lib/semdock/blobs -type f | grep -q .'

# Upgrade to a newer build with a locally edited config: the edit is kept.
echo '# edited by the administrator' >>/etc/semdock/semdock.toml
newer="$work/semdock_newer.deb"
check "build a newer package" sh -c "packaging/build-deb.sh '${version%-*}-99' >/dev/null && cp \$(ls -t target/packages/semdock_*-99_amd64.deb | head -1) '$newer'"
check "dpkg -i upgrades" dpkg -i --force-confold "$newer"
check "upgraded version installed" sh -c "dpkg-query -W -f='\${Version}' semdock | grep -q -- '-99'"
check "edited config kept" grep -q "edited by the administrator" /etc/semdock/semdock.toml
check "data kept across the upgrade" test -s /var/lib/semdock/meta.redb
rm -f target/packages/semdock_*-99_amd64.deb

# Remove keeps config and data; purge removes everything, the user included.
check "dpkg -r" dpkg -r semdock
check "binary gone after remove" test ! -e /usr/bin/semdock
check "config kept after remove" test -f /etc/semdock/semdock.toml
check "data kept after remove" test -d /var/lib/semdock
check "dpkg -P" dpkg -P semdock
check "config gone after purge" test ! -e /etc/semdock
check "data gone after purge" test ! -e /var/lib/semdock
check "user gone after purge" sh -c '! getent passwd semdock'
check "unit gone after purge" test ! -e /lib/systemd/system/semdock.service

report
