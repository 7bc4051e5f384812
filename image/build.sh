#!/usr/bin/env bash
# Builds siem-relay as one statically linked binary (glibc, crt-static) for
# appliances and minimal containers: image/siem-relay.
#
#   bash image/build.sh          # a plain release build
#   bash image/build.sh --pgo    # profile-guided: runs scripts/build-pgo
#                                # (its profile, trained and checked on the
#                                # e2e bench), then builds with that profile
set -euo pipefail
cd "$(dirname "$0")/.."
pgo=false
case "${1:-}" in
  "") ;;
  --pgo) pgo=true ;;
  *) echo "usage: bash image/build.sh [--pgo]" >&2; exit 2 ;;
esac
target=$(rustc -vV | sed -n 's/^host: //p')
# RUSTFLAGS replaces .cargo/config.toml's rustflags, so its cfg goes in too:
# the binary is then built as the one the bench measures.
flags="${RUSTFLAGS:-} --cfg tokio_unstable -C target-feature=+crt-static"
if $pgo; then
  bash scripts/build-pgo
  flags="$flags -Cprofile-use=$PWD/target/pgo-data/merged.profdata"
fi
RUSTFLAGS="$flags" cargo build --release --locked --target "$target"
cp "target/$target/release/siem-relay" image/siem-relay
strip image/siem-relay 2>/dev/null || true
file image/siem-relay 2>/dev/null || ls -l image/siem-relay
