#!/usr/bin/env bash
# Throwaway storage servers on 127.0.0.1 for the remote-repository tests:
#   S3:   moto's S3 server (honours If-None-Match: *) on $SV_S3_PORT (9010), and a second
#         moto with request authentication switched on ($SV_S3_AUTH_PORT, 9011), which
#         refuses every key: the "wrong credentials" test needs a server that says no.
#   SFTP: OpenSSH's sshd on $SV_SFTP_PORT (2222), key-only login, an unprivileged user.
#
#   .ci/servers.sh setup   install (apt-get: openssh; PyPI: moto) — needs root, idempotent
#   .ci/servers.sh start   start both (idempotent) and write target/test-servers/env
#   .ci/servers.sh stop    stop both
#
# The tests read target/test-servers/env (or the same variables from the environment).
# Based on the recipe in ../shared/servers/test-servers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
D="${SV_SERVERS_DIR:-$PWD/target/test-servers}"
S3_PORT="${SV_S3_PORT:-9010}"
S3_AUTH_PORT="${SV_S3_AUTH_PORT:-9011}"
SFTP_PORT="${SV_SFTP_PORT:-2222}"
SFTP_USER="${SV_SFTP_USER:-snapvault}"
MOTO_VERSION=5.2.5
mkdir -p "$D"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 $(($2 * 10))); do port_open "$1" && return 0; sleep 0.1; done
  echo "servers.sh: nothing listens on 127.0.0.1:$1 after $2 s (see $D/*.log)" >&2
  return 1
}
alive() { [ -f "$D/$1.pid" ] && kill -0 "$(cat "$D/$1.pid")" 2>/dev/null; }

setup() {
  export DEBIAN_FRONTEND=noninteractive
  if ! [ -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v ssh-keyscan >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
  fi
  if ! [ -x "$D/venv/bin/moto_server" ]; then
    python3 -m venv "$D/venv" 2>/dev/null || {
      apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$D/venv"
    }
    "$D/venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
}

start_moto() { # name port [extra env]
  local name=$1 port=$2
  shift 2
  alive "$name" && port_open "$port" && return 0
  env "$@" nohup "$D/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$D/$name.log" 2>&1 &
  echo $! >"$D/$name.pid"
}

start() {
  start_moto moto "$S3_PORT"
  # INITIAL_NO_AUTH_ACTION_COUNT=0: moto checks every request's key from the first one.
  start_moto moto-auth "$S3_AUTH_PORT" INITIAL_NO_AUTH_ACTION_COUNT=0

  id "$SFTP_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$SFTP_USER"
  usermod -p '*' "$SFTP_USER" # unlocked but passwordless: sshd refuses '!' accounts without PAM
  local home
  home=$(getent passwd "$SFTP_USER" | cut -d: -f6)
  [ -f "$D/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$D/host_ed25519"
  [ -f "$D/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$D/client_ed25519"
  [ -f "$D/stranger_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$D/stranger_ed25519"
  install -d -m 700 -o "$SFTP_USER" -g "$SFTP_USER" "$home/.ssh" "$home/repos"
  install -m 600 -o "$SFTP_USER" -g "$SFTP_USER" "$D/client_ed25519.pub" "$home/.ssh/authorized_keys"
  if ! alive sshd; then
    cat >"$D/sshd_config" <<EOF
Port $SFTP_PORT
ListenAddress 127.0.0.1
HostKey $D/host_ed25519
PidFile $D/sshd.pid
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers $SFTP_USER
MaxStartups 100:30:200
Subsystem sftp internal-sftp
EOF
    mkdir -p /run/sshd
    /usr/sbin/sshd -t -f "$D/sshd_config"
    /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
  fi
  wait_port "$S3_PORT" 60
  wait_port "$S3_AUTH_PORT" 60
  wait_port "$SFTP_PORT" 10
  # Strict host-key checking is snapvault's default: record the host key the way a user
  # would (ssh reads the known_hosts of the account's home, whatever $HOME says).
  local kh
  kh="$(getent passwd "$(id -un)" | cut -d: -f6)/.ssh/known_hosts"
  mkdir -p "$(dirname "$kh")" && chmod 700 "$(dirname "$kh")"
  ssh-keyscan -p "$SFTP_PORT" -t ed25519 127.0.0.1 2>/dev/null >"$D/known_hosts"
  touch "$kh"
  grep -v "^\[127.0.0.1\]:$SFTP_PORT " "$kh" >"$kh.new" || true
  cat "$D/known_hosts" >>"$kh.new" && mv "$kh.new" "$kh" && chmod 600 "$kh"
  curl -sf -X PUT "http://127.0.0.1:$S3_PORT/snapvault-test" >/dev/null 2>&1 ||
    python3 -c "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:$S3_PORT/snapvault-test', method='PUT'))"
  cat >"$D/env" <<EOF
SV_SERVERS_DIR=$D
SV_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
SV_S3_AUTH_ENDPOINT=http://127.0.0.1:$S3_AUTH_PORT
SV_S3_BUCKET=snapvault-test
SV_S3_PID_FILE=$D/moto.pid
SV_SFTP_HOST=127.0.0.1
SV_SFTP_PORT=$SFTP_PORT
SV_SFTP_USER=$SFTP_USER
SV_SFTP_KEY=$D/client_ed25519
SV_SFTP_STRANGER_KEY=$D/stranger_ed25519
SV_SFTP_ROOT=$home/repos
SV_SFTP_PID_FILE=$D/sshd.pid
EOF
  echo "servers.sh: S3 on :$S3_PORT (auth :$S3_AUTH_PORT), SFTP on :$SFTP_PORT; settings in $D/env"
}

stop() {
  for p in moto moto-auth sshd; do
    if [ -f "$D/$p.pid" ]; then
      kill "$(cat "$D/$p.pid")" 2>/dev/null || true
      rm -f "$D/$p.pid"
    fi
  done
}

case "${1:-start}" in
  setup) setup ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 setup|start|stop" >&2; exit 2 ;;
esac
