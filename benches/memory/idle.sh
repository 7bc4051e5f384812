#!/usr/bin/env bash
# Resident memory of a relay on the default config while idle: after it
# starts, and after a burst of events has been delivered.
#
#   bash benches/memory/idle.sh [RELAY] [EVENTS]
#
# Runs RELAY (default target/release/siem-relay) on a copy of
# config/siem-relay.toml in a temp dir (its own data dir, the same ports:
# nothing else may listen on 127.0.0.1:5514 or :8088), waits 5 s, sends
# EVENTS (default 500000) RFC 5424 lines of ~290 bytes over one TCP
# connection, waits until the file destination has written them all
# (at most 60 s) and then 15 s more. At each point it prints VmRSS, the
# part of it that is the ring's map (page cache: RssFile of the
# segment-*.dat mappings), RssAnon, and VmRSS without the ring's map.
# Needs python3.
set -euo pipefail
relay=${1:-target/release/siem-relay}
events=${2:-500000}
[ -x "$relay" ] || { echo "no relay binary at $relay: run cargo build --release" >&2; exit 1; }
relay=$(cd "$(dirname "$relay")" && pwd)/$(basename "$relay")
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
source "$root/benches/common.sh"
mkdir -p "$dir/config"
cp "$root/config/siem-relay.toml" "$dir/config/"

"$relay" run --config "$dir/config/siem-relay.toml" > "$dir/relay.log" 2>&1 &
pid=$!
wait_listening 5514 || { echo "relay did not listen on 5514; its log:" >&2; cat "$dir/relay.log" >&2; exit 1; }

show() {
  awk -v what="$1" '
    FNR == 1 { file++ }
    file == 1 && /^VmRSS:/ { vm = $2 }
    file == 1 && /^RssAnon:/ { anon = $2 }
    file == 2 && /^[0-9a-f]+-[0-9a-f]+ / { ring = ($6 ~ /segment-[0-9]+\.dat$/) }
    file == 2 && ring && /^Rss:/ { map += $2 }
    END { printf "%-26s VmRSS %7.1f MiB  ring map %6.1f MiB  anon %5.1f MiB  without the ring %5.1f MiB\n",
          what, vm / 1024, map / 1024, anon / 1024, (vm - map) / 1024 }
  ' "/proc/$pid/status" "/proc/$pid/smaps"
}

sleep 5
show "idle after start"
python3 - "$events" <<'PY'
import socket, sys
n = int(sys.argv[1])
line = (b'<86>1 2026-12-07T03:10:00.123456Z bench-host-01 siem-bench 4242 AUTH '
        b'[bench@32473 seq="%d" ts_ns="1"][origin@32473 ip="10.1.2.3" software="e2e"] '
        b'{"seq":%d,"ts_ns":1,"action":"user.login","category":"AUTHENTICATION","outcome":"success","user":"alice"}\n')
s = socket.create_connection(("127.0.0.1", 5514))
for start in range(0, n, 10000):
    s.sendall(b"".join(line % (i, i) for i in range(start, min(n, start + 10000))))
s.close()
PY
# counted once a second: the files reach ~270 MB, and reading them more
# often would keep a core busy while the relay is meant to go idle
delivered() { cat "$dir"/data/out/events.ndjson* 2>/dev/null | wc -l; }
for _ in $(seq 60); do
  [ "$(delivered)" -ge "$events" ] && break
  sleep 1
done
echo "delivered: $(delivered) of $events events"
sleep 15
show "idle after $events events"
