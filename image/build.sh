#!/usr/bin/env bash
# Builds siem-relay as one statically linked binary (glibc, crt-static) for
# appliances and minimal containers: image/siem-relay.
#
#   bash image/build.sh          # a plain release build
#   bash image/build.sh --pgo    # profile-guided: scripts/build-pgo with
#                                # this build's flags and --target (trained
#                                # and checked on the e2e bench)
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
  # instrumented, trained and built with these very flags and --target:
  # a profile only applies to a build made the same way
  RUSTFLAGS="$flags" bash scripts/build-pgo --target "$target"
  cp "target/pgo/$target/release/siem-relay" image/siem-relay
else
  RUSTFLAGS="$flags" cargo build --release --locked --target "$target"
  cp "target/$target/release/siem-relay" image/siem-relay
fi
strip image/siem-relay 2>/dev/null || true
file image/siem-relay 2>/dev/null || ls -l image/siem-relay
