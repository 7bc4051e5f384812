# Shell helpers the bench scripts source (not run on its own).

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 5 s for something to listen on 127.0.0.1:$1.
wait_listening() {
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# Writes $1/relay.toml: an http source on port $2 into a ring of $3 bytes
# (fsync "never" if $4 is "never") and a blackhole destination.
http_blackhole_config() {
  local fsync=""
  [ "${4:-}" = never ] && fsync='fsync = "never"'
  cat > "$1/relay.toml" <<EOT
data_dir = "$1/data"
[buffer]
max_bytes = "$3"
segment_bytes = "64MiB"
$fsync
[sources.web]
type = "http"
address = "127.0.0.1:$2"
[destinations.null]
type = "blackhole"
EOT
}
