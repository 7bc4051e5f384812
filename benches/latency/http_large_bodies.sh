#!/usr/bin/env bash
# How long a small HTTP request waits while large bodies are being parsed.
#
#   bash benches/latency/http_large_bodies.sh [RELAY] [BIG_CLIENTS] [SECONDS]
#
# An http source with a blackhole destination. BIG_CLIENTS (default 2)
# clients each post a 7.3 MiB NDJSON body (30,000 events) back to back on a
# kept-alive connection; meanwhile one client posts a one-event body every
# 2 ms for SECONDS (default 8) and times each round trip. Prints the small
# requests' p50/p90/p99/max and how many large bodies were accepted.
# Needs python3. RELAY defaults to target/release/siem-relay.
set -euo pipefail
relay=${1:-target/release/siem-relay}
big=${2:-2}
secs=${3:-8}
[ -x "$relay" ] || { echo "no relay binary at $relay: run cargo build --release" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
source "$(dirname "$0")/../common.sh"
port=$(free_port)
http_blackhole_config "$dir" "$port" 512MiB
"$relay" run --config "$dir/relay.toml" > "$dir/relay.log" 2>&1 &
wait_listening "$port"
python3 - "$port" "$big" "$secs" <<'PY'
import http.client, sys, threading, time
port, nbig, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
body = "".join('{"action":"big.%d","user_id":"u%d","message":"%s"}\n' % (i, i, "x" * 200)
               for i in range(30000)).encode()
stop, done = False, []
def big():
    c, n = http.client.HTTPConnection("127.0.0.1", port), 0
    while not stop:
        c.request("POST", "/v1/events", body=body)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
        n += 1
    done.append(n)
threads = [threading.Thread(target=big) for _ in range(nbig)]
for t in threads: t.start()
time.sleep(0.5)
c, lat, end = http.client.HTTPConnection("127.0.0.1", port), [], time.time() + secs
while time.time() < end:
    t0 = time.perf_counter()
    c.request("POST", "/v1/events", body=b'{"action":"small"}')
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
    lat.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.002)
stop = True
for t in threads: t.join()
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print("%d clients posting %.1f MiB bodies (%d accepted); %d small requests: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms"
      % (nbig, len(body) / 1048576, sum(done), len(lat), q(.5), q(.9), q(.99), lat[-1]))
PY
