#!/usr/bin/env bash
# Install the benchmark peers. Idempotent: safe to run again.
#  - rsyslog: the Debian packages (apt-get install rsyslog rsyslog-elasticsearch
#    rsyslog-gnutls: omelasticsearch is rsyslog's HTTP JSON output in Debian,
#    gtls its TLS driver for tls_syslog).
#  - syslog-ng: conflicts with rsyslog as a Debian package, so its .debs are
#    downloaded and unpacked (dpkg-deb -x) into target/peers/syslog-ng, and run
#    from there with LD_LIBRARY_PATH and --module-path (see benches/e2e.rs).
# Neither daemon is started here; the bench starts them with generated configs.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="${SYSLOG_NG_ROOT:-$ROOT/target/peers/syslog-ng}"
export DEBIAN_FRONTEND=noninteractive

if ! command -v rsyslogd >/dev/null 2>&1 || ! dpkg -s rsyslog-elasticsearch rsyslog-gnutls >/dev/null 2>&1; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends rsyslog rsyslog-elasticsearch rsyslog-gnutls
fi

if [ ! -x "$DEST/usr/sbin/syslog-ng" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  pkgs="syslog-ng-core syslog-ng-mod-http libivykis0 libnet1 libpcre3 libwrap0"
  ( cd "$work" && apt-get download $pkgs ) || { apt-get update -q; ( cd "$work" && apt-get download $pkgs ); }
  mkdir -p "$DEST"
  for d in "$work"/*.deb; do dpkg-deb -x "$d" "$DEST"; done
fi
# Libraries it links against that the base image normally has (installed, not unpacked).
missing=""
for p in libglib2.0-0 libjson-c5 libssl3 libcurl4 libcap2; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then apt-get install -y -q --no-install-recommends $missing; fi

LD_LIBRARY_PATH="$DEST/usr/lib/x86_64-linux-gnu:$DEST/usr/lib/syslog-ng:$DEST/lib/x86_64-linux-gnu" \
  "$DEST/usr/sbin/syslog-ng" --version | head -1
rsyslogd -v | head -1
echo "peers installed: rsyslogd=$(command -v rsyslogd) syslog-ng=$DEST/usr/sbin/syslog-ng"
