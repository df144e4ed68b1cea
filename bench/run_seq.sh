#!/usr/bin/env bash
# bench/run_seq.sh -- /recommend latency of the sequential model (kind seq)
# against the factor model (iALS, the foundation's MF) side by side: both are
# fitted on the same generated data, served by two bin/hyperrec processes on
# one Redis whose users all have a recent history (entries with event times,
# as /event writes them), and measured in alternation, RUNS times each, with
# bin/hyperrec-bench http. Prints every run's JSON line, then per model the
# medians and the seq/MF ratio of p50 and p99.
#
#   ITEMS=1682 bench/run_seq.sh          # a MovieLens-sized catalogue
#   ITEMS=100000 EVENTS=300000 SEQ_EPOCHS=1 bench/run_seq.sh
#
# SEQ_ARGS / MF_ARGS add fit options. 127.0.0.1 only; everything is removed
# at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HR_BIN_DIR:-bin}
RUNS=${RUNS:-3}
REQUESTS=${REQUESTS:-5000}
CONC=${CONC:-1}
USERS=${USERS:-2000}
ITEMS=${ITEMS:-1682}
EVENTS=${EVENTS:-100000}
SEQ_EPOCHS=${SEQ_EPOCHS:-10}
SEQ_ARGS=${SEQ_ARGS:-}
MF_ARGS=${MF_ARGS:-}
HIST=${HIST:-30}     # recent items per user pushed to Redis

# shellcheck source=bench/lib.sh
. bench/lib.sh
start_redis

"$BIN/hyperrec-train" gen --out "$tmp/data" --users "$USERS" --items "$ITEMS" --events "$EVENTS" --seed 1 >/dev/null
t0=$(date +%s)
# shellcheck disable=SC2086
"$BIN/hyperrec-train" fit --data "$tmp/data/events.csv" --items "$tmp/data/items.csv" --out "$tmp/mf/default" --quiet $MF_ARGS >/dev/null
t1=$(date +%s)
# shellcheck disable=SC2086
"$BIN/hyperrec-train" fit --data "$tmp/data/events.csv" --items "$tmp/data/items.csv" --out "$tmp/seq/default" --quiet \
  --kind seq --epochs "$SEQ_EPOCHS" $SEQ_ARGS >/dev/null
t2=$(date +%s)
echo "# $USERS users x $ITEMS items, $EVENTS events: MF fitted in $((t1 - t0)) s, seq ($SEQ_EPOCHS epochs) in $((t2 - t1)) s (incl. index.bin)"

start() { # name models
  "$BIN/hyperrec" --listen 127.0.0.1:0 --redis "127.0.0.1:$RP" --models "$2" >/dev/null 2>"$tmp/$1.log" &
  pids+=($!)
}
start mf "$tmp/mf"
start seq "$tmp/seq"
PM=$(port_of mf)
PQ=$(port_of seq)

# Every user gets HIST recent items (an hour apart, the newest a day ago),
# written as /event writes them: "<item>\t<ts>", newest first, and a
# current context (location, mood: the seq version's context features).
now=$(date +%s)
python3 - "$USERS" "$ITEMS" "$HIST" "$now" <<'PY' | redis-cli -p "$RP" >/dev/null
import sys
users, items, hist, now = map(int, sys.argv[1:5])
locs = ["home", "work", "commute", "gym"]
moods = ["happy", "calm", "sad", "energetic", "tired"]
for u in range(1, users + 1):
    e = ['"i%05d\\t%d"' % ((u * 7 + 13 * j) % items + 1, now - 86400 - 3600 * j)
         for j in range(hist)]
    print("LPUSH hr:hist:{u%05d} %s" % (u, " ".join(reversed(e))))
    print("HSET hr:ctx:{u%05d} location %s mood %s" % (u, locs[u % 4], moods[u % 5]))
PY

for name in mf seq; do
  p=$PM; [ $name = seq ] && p=$PQ
  curl -s -X POST "http://127.0.0.1:$p/recommend" -H 'Content-Type: application/json' -H "Authorization: Bearer $HR_BENCH_KEY" \
    -d '{"user_id":"u00001","k":10,"explain":true}' | python3 -c 'import json,sys; r=json.load(sys.stdin); print("# '$name': retrieval", r["retrieval"], "history_used", r["history_used"], "items", len(r["items"]), "context effects", [c["feature"] for c in r["items"][0]["explain"]["context"]])'
  "$BIN/hyperrec-bench" http --target "127.0.0.1:$p" --requests 1000 --concurrency "$CONC" \
    --users "$USERS" --user-prefix u --user-width 5 >/dev/null # warm-up
done
for _ in $(seq "$RUNS"); do
  for name in mf seq; do
    p=$PM; [ $name = seq ] && p=$PQ
    "$BIN/hyperrec-bench" http --target "127.0.0.1:$p" --requests "$REQUESTS" \
      --concurrency "$CONC" --users "$USERS" --user-prefix u --user-width 5 |
      python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["model"]="'$name'"; print(json.dumps(r))' |
      tee -a "$tmp/runs.jsonl"
  done
done
python3 - "$tmp/runs.jsonl" "$ITEMS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
for m in ("mf", "seq"):
    rs = [r for r in rows if r["model"] == m]
    med[m] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms")}
    print(json.dumps({"bench": "http-median", "model": m, "items": int(sys.argv[2]), "runs": len(rs),
                      **{k: round(v, 3) for k, v in med[m].items()}}))
print(json.dumps({"bench": "seq/mf", "items": int(sys.argv[2]),
                  "p50_ratio": round(med["seq"]["p50_ms"] / med["mf"]["p50_ms"], 2),
                  "p99_ratio": round(med["seq"]["p99_ms"] / med["mf"]["p99_ms"], 2)}))
PY
