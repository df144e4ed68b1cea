# bench/lib.sh -- sourced by the bench scripts: a scratch directory and the
# processes they start, both removed at exit; free ports; a private
# redis-server on 127.0.0.1 ($RP); the port a started server listens on.
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# The benches' API key: every hyperrec they start accepts it (by default
# /event and /recommend for a user need credentials, docs/security.md) and
# every client sends it (Authorization: Bearer), so the figures include the
# key check.
export HR_BENCH_KEY=hrk_bench_0123456789abcdef
HYPERREC_AUTH_API_KEYS="bench:$(printf %s "$HR_BENCH_KEY" | sha256sum | cut -d' ' -f1)"
export HYPERREC_AUTH_API_KEYS

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts redis-server on a free port (RP) and waits until it answers.
start_redis() {
  RP=$(port)
  redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

# The port of the hyperrec whose log is $tmp/$1.log (started with
# --listen 127.0.0.1:0), once it logs "listening" (at most 2 minutes).
port_of() {
  for _ in $(seq 2400); do grep -q '"event":"listening"' "$tmp/$1.log" && break; sleep 0.05; done
  grep -o '"event":"listening"[^}]*"port":[0-9]*' "$tmp/$1.log" | grep -o '[0-9]*$'
}
