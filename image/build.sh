#!/usr/bin/env bash
# Builds siem-relay as one statically linked binary (glibc, crt-static) for
# appliances and minimal containers: image/siem-relay.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target"
cp "target/$target/release/siem-relay" image/siem-relay
strip image/siem-relay 2>/dev/null || true
file image/siem-relay 2>/dev/null || ls -l image/siem-relay
