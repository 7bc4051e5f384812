#!/usr/bin/env bash
# Peak memory of a relay under many senders, where nothing else bounds it.
#
#   bash benches/memory/many_senders.sh tcp  [RELAY] [CONNECTIONS] [SECONDS]
#   bash benches/memory/many_senders.sh http [RELAY] [REQUESTS]
#
# tcp:  a syslog_tcp source whose ring blocks (32 MiB ring, a syslog
#       destination that accepts and never reads, when_full = "block"), and
#       CONNECTIONS (default 1000) senders writing as fast as the relay reads
#       for SECONDS (default 15).
# http: an http source with a blackhole destination and REQUESTS (default 50)
#       concurrent 8 MiB NDJSON uploads with curl.
# Prints the relay's peak anonymous RSS (sampled every 100-250 ms; the ring's
# page cache is not in it) and, for http, the answers' status codes and the
# anonymous RSS 10 s after the last upload.
# Needs python3 and, for http, curl. RELAY defaults to target/release/siem-relay.
set -euo pipefail
mode=${1:?tcp or http}
relay=${2:-target/release/siem-relay}
[ -x "$relay" ] || { echo "no relay binary at $relay: run cargo build --release" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
source "$(dirname "$0")/../common.sh"
rss_kib() { awk '/RssAnon/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

case "$mode" in
tcp)
  conns=${3:-1000}; secs=${4:-15}
  in_port=$(free_port); stuck_port=$(free_port)
  cat > "$dir/relay.toml" <<EOT
data_dir = "$dir/data"
[buffer]
max_bytes = "32MiB"
segment_bytes = "4MiB"
fsync = "never"
[sources.tcp]
type = "syslog_tcp"
address = "127.0.0.1:$in_port"
max_connections = $((conns + 16))
[destinations.stuck]
type = "syslog"
address = "127.0.0.1:$stuck_port"
mode = "tcp"
when_full = "block"
EOT
  # the destination's server: accepts, never reads
  python3 - "$stuck_port" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); held = []
while True:
    c, _ = s.accept(); held.append(c)
PY
  "$relay" run --config "$dir/relay.toml" > "$dir/relay.log" 2>&1 &
  pid=$!
  wait_listening "$in_port"
  python3 - "$in_port" "$conns" "$secs" <<'PY' &
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
line = b'<13>1 2026-12-05T10:00:00Z host app - - [a@1 x="1"] ' + b"x" * 200 + b"\n"
chunk = line * 300
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False); socks.append(s)
end = time.time() + secs
while time.time() < end:
    busy = False
    for s in socks:
        try:
            s.send(chunk); busy = True
        except BlockingIOError:
            pass
    if not busy:
        time.sleep(0.05)
time.sleep(3600)
PY
  peak=0
  for _ in $(seq $((secs * 4))); do
    r=$(rss_kib $pid); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.25
  done
  echo "tcp: $conns connections, ring blocked: peak anon RSS $((peak / 1024)) MiB"
  ;;
http)
  n=${3:-50}
  port=$(free_port)
  http_blackhole_config "$dir" "$port" 4GiB never
  python3 -c "
import json
line = json.dumps({'message': 'x' * 200, 'host': 'h', 'n': 1}) + '\n'
open('$dir/body.ndjson', 'w').write(line * (8 * 1024 * 1024 // len(line)))"
  "$relay" run --config "$dir/relay.toml" > "$dir/relay.log" 2>&1 &
  pid=$!
  wait_listening "$port"
  for _ in $(seq "$n"); do
    curl -s -o /dev/null -w "%{http_code}\n" -H "Expect:" --data-binary "@$dir/body.ndjson" \
      "http://127.0.0.1:$port/v1/events" >> "$dir/codes" &
  done
  peak=0
  while [ "$(jobs -rp | wc -l)" -gt 1 ]; do
    r=$(rss_kib $pid); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.1
  done
  echo "http: $n concurrent 8 MiB uploads: peak anon RSS $((peak / 1024)) MiB; answers: $(sort "$dir/codes" | uniq -c | awk '{printf "%s x%s ", $2, $1}')"
  # what stays once the relay is quiet (it trims its heap 5 s into a quiet spell)
  sleep 10
  echo "http: anon RSS 10 s after the last upload: $(( $(rss_kib $pid) / 1024 )) MiB"
  ;;
*) echo "mode: tcp or http" >&2; exit 2 ;;
esac
