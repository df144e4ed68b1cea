#!/usr/bin/env bash
# bench/run_similar.sh -- `make bench-similar`: POST /similar on an iALS
# model of MovieLens 100K (../shared/data/ml-100k, every rating, u.item's
# genres as attributes), through the index against an exact scan of the
# same model, and its latency against /recommend's, side by side
# (bench/similar_check.py). 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HR_BIN_DIR:-bin}
ML=${ML100K:-../shared/data/ml-100k}
[ -f "$ML/u.data" ] || { echo "run_similar: $ML/u.data is missing" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. bench/lib.sh
start_redis
"$BIN/hyperrec-train" fit --data "$ML/u.data" --format movielens \
  --items "$ML/u.item" --kind ials --out "$tmp/models/default" --quiet \
  >/dev/null 2>"$tmp/fit.log"
cut -d'|' -f1 "$ML/u.item" >"$tmp/items.txt"
cut -f1 "$ML/u.data" | sort -un >"$tmp/users.txt"

start() { # name ann.min_items
  HYPERREC_ANN_MIN_ITEMS=$2 \
    "$BIN/hyperrec" --listen 127.0.0.1:0 --redis "127.0.0.1:$RP" \
    --models "$tmp/models" >/dev/null 2>"$tmp/$1.log" &
  pids+=($!)
}
start index 1
start scan 2000000000
PI=$(port_of index)
PS=$(port_of scan)
python3 bench/similar_check.py "$PI" "$PS" "$tmp/items.txt" "$tmp/users.txt" \
  "$HR_BENCH_KEY"
