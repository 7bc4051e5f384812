#!/usr/bin/env python3
# Test double for the e2e harness only (NOT a relay): `--relay benches/e2e/fake_relay.py`.
# It reads the generated config and forwards the syslog_tcp source byte-for-byte
# to the first syslog destination over ONE connection. With one input connection
# (tcp_syslog) the bench passes; with several (tcp16) the chunks of different
# connections interleave mid-frame and the bench must report lost, duplicated
# and seq-less events and exit non-zero: a check that the harness catches a
# relay that corrupts framing.
import sys, socket, threading, tomllib
cfg = tomllib.load(open(sys.argv[sys.argv.index("--config") + 1], "rb"))
src = next(s for s in cfg["sources"].values() if s["type"] == "syslog_tcp")["address"]
dst = next(d for d in cfg["destinations"].values() if d["type"] == "syslog")["address"]
h, p = src.rsplit(":", 1)
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind((h, int(p))); l.listen(64)
dh, dp = dst.rsplit(":", 1)
out = socket.create_connection((dh, int(dp)))
lock = threading.Lock()
def pump(c):
    while True:
        b = c.recv(262144)
        if not b: break
        with lock: out.sendall(b)
while True:
    c, _ = l.accept()
    threading.Thread(target=pump, args=(c,), daemon=True).start()
