#!/usr/bin/env bash
# bench/run.sh -- `make bench`: end-to-end /recommend latency and throughput.
# Starts a private redis-server and bin/hyperrec on 127.0.0.1 (free ports),
# trains a model on generated data, then runs bin/hyperrec-bench http
# RUNS times and prints each run's JSON line and the median.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HR_BIN_DIR:-bin}
RUNS=${RUNS:-5}
REQUESTS=${REQUESTS:-20000}
CONC=${CONC:-2}
USERS=${USERS:-2000}
ITEMS=${ITEMS:-500}
EVENTS=${EVENTS:-60000}
FIT_ARGS=${FIT_ARGS:-}
MODELS=${MODELS:-}   # an existing models directory (with default/<version>): skip gen and fit
SEED_USERS=${SEED_USERS:-$USERS}   # users given recent history in Redis

# shellcheck source=bench/lib.sh
. bench/lib.sh
start_redis

if [ -z "$MODELS" ]; then
  "$BIN/hyperrec-train" gen --out "$tmp/data" --users "$USERS" --items "$ITEMS" --events "$EVENTS" --seed 1 >/dev/null
  t0=$(date +%s)
  # shellcheck disable=SC2086
  "$BIN/hyperrec-train" fit --data "$tmp/data/events.csv" --format csv --out "$tmp/models/default" --quiet $FIT_ARGS >/dev/null
  echo "# trained in $(( $(date +%s) - t0 )) s (incl. index.bin)"
  MODELS="$tmp/models"
fi
"$BIN/hyperrec" --listen 127.0.0.1:0 --redis "127.0.0.1:$RP" --models "$MODELS" 2>"$tmp/server.log" &
pids+=($!)
for _ in $(seq 1200); do grep -q '"event":"listening"' "$tmp/server.log" && break; sleep 0.05; done
HP=$(grep -o '"event":"listening"[^}]*"port":[0-9]*' "$tmp/server.log" | grep -o '[0-9]*$')
# Give every benchmark user some recent history, as in production.
for u in $(seq 1 "$SEED_USERS"); do
  printf 'LPUSH hr:hist:{u%05d} i%05d i%05d i%05d\n' "$u" $((u % ITEMS + 1)) $(((u * 7) % ITEMS + 1)) $(((u * 13) % ITEMS + 1))
done | redis-cli -p "$RP" >/dev/null

echo "# /recommend, $USERS users x $ITEMS items, $REQUESTS requests x $RUNS runs, concurrency $CONC"
curl -s -X POST "http://127.0.0.1:$HP/recommend" -H 'Content-Type: application/json' -H "Authorization: Bearer $HR_BENCH_KEY" \
  -d '{"user_id":"u00001","k":10}' | python3 -c 'import json,sys; r=json.load(sys.stdin); print("# retrieval:", r["retrieval"], "items:", len(r["items"]))'
out="$tmp/runs.jsonl"
"$BIN/hyperrec-bench" http --target "127.0.0.1:$HP" --requests 2000 --concurrency "$CONC" --users "$USERS" --user-prefix u --user-width 5 >/dev/null # warm-up
for _ in $(seq "$RUNS"); do
  "$BIN/hyperrec-bench" http --target "127.0.0.1:$HP" --requests "$REQUESTS" \
    --concurrency "$CONC" --users "$USERS" --user-prefix u --user-width 5 | tee -a "$out"
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {k: statistics.median(r[k] for r in rows) for k in ("rps", "p50_ms", "p90_ms", "p99_ms")}
print(json.dumps({"bench": "http-median", "runs": len(rows), **{k: round(v, 3) for k, v in med.items()}}))
PY
