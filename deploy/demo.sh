#!/usr/bin/env bash
# demo.sh -- `make run`: a private Redis, a generated data set, a trained
# model, seeded user contexts and the server on 127.0.0.1:8080 (override
# with HR_DEMO_LISTEN). Everything lives under var/ (override with
# HR_DEMO_VAR); Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${HR_BIN_DIR:-bin}
VAR=${HR_DEMO_VAR:-var}
LISTEN=${HR_DEMO_LISTEN:-127.0.0.1:8080}
mkdir -p "$VAR/redis" "$VAR/data" "$VAR/models"
VAR=$(cd "$VAR" && pwd)

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "demo: stopped"
}
trap cleanup INT TERM EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# 1. Redis, private to the demo, with its data in var/redis.
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$VAR/redis" \
  --appendonly yes --save '' --daemonize no \
  >"$VAR/redis/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.05
done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "demo: redis did not start"; exit 1; }
echo "demo: redis on 127.0.0.1:$REDIS_PORT (data in $VAR/redis)"

# 2. Data and model, generated once.
if [ ! -f "$VAR/data/events.csv" ]; then
  echo "demo: generating a synthetic data set in $VAR/data"
  # strong context effects (the category a user picks moves with the hour,
  # location and mood), so that the model fit chooses follows the context
  "$BIN/hyperrec-train" gen --out "$VAR/data" --seed 1 --users 1000 \
    --items 300 --events 30000 --context-effect 2.5
fi
if ! ls -d "$VAR"/models/default/[0-9]* >/dev/null 2>&1; then
  echo "demo: training: fit chooses the model (about two minutes; docs/training.md)"
  set -- # user attributes when the data has them (older demo data does not)
  [ -f "$VAR/data/users.csv" ] && set -- --users "$VAR/data/users.csv"
  "$BIN/hyperrec-train" fit --data "$VAR/data/events.csv" --format csv \
    --items "$VAR/data/items.csv" "$@" --out "$VAR/models/default" \
    --budget "${HR_DEMO_BUDGET:-3m}" --quiet 2>"$VAR/fit.log" ||
    { cat "$VAR/fit.log" >&2; echo "demo: fit failed"; exit 1; }
fi
# What fit chose and why (report.json in the version it wrote).
REPORT=$(ls -d "$VAR"/models/default/[0-9]* | sort -n | tail -1)/report.json
if [ -f "$REPORT" ]; then
  python3 - "$REPORT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("demo: fit chose %s: %s" % (r["winner"], r["reason"]))
for c in r["candidates"]:
    s = ("NDCG@10 %.4f (SE %.4f)" % (c["NDCG@10"], c["NDCG@10_se"])
         if c["state"] == "scored" else c["state"])
    print("demo:   %-20s %s" % (c["name"], s))
PY
fi

# 3. Seed the users' current context (location, mood, time zone).
sed -n '2,201p' "$VAR/data/contexts.csv" |
  while IFS=, read -r uid loc mood tz; do
    printf 'HSET hr:ctx:{%s} location %s mood %s tz %s\n' "$uid" "$loc" "$mood" "$tz"
  done | redis-cli -p "$REDIS_PORT" >/dev/null
USER=$(sed -n 2p "$VAR/data/contexts.csv" | cut -d, -f1)
ITEM=$(sed -n 2p "$VAR/data/items.csv" | cut -d, -f1)

# 4. Credentials, made once: an API key (for servers; the server keeps only
# its SHA-256) and the secret that signs user tokens (for browsers), as a
# site would have them (docs/security.md).
CREDS="$VAR/demo-credentials"
if [ ! -f "$CREDS" ]; then
  key=$("$BIN/hyperrec" hash-key | sed -n 's/^key: *//p')
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  ( umask 077; printf 'API_KEY=%s\nTOKEN_SECRET=%s\n' "$key" "$secret" >"$CREDS" )
fi
API_KEY=$(sed -n 's/^API_KEY=//p' "$CREDS")
TOKEN_SECRET=$(sed -n 's/^TOKEN_SECRET=//p' "$CREDS")
export HYPERREC_AUTH_API_KEYS="demo:$("$BIN/hyperrec" hash-key "$API_KEY")"
export HYPERREC_AUTH_TOKEN_SECRETS="$TOKEN_SECRET"
export HYPERREC_UI_ENABLED=1 # the console at /ui/ (loopback only here)
TOKEN=$("$BIN/hyperrec" token --user "$USER" --ttl 86400)

# 5. The server.
# (tee ignores Ctrl-C so that the server's last log lines still reach the
# console and the log; it ends when the server closes stderr)
"$BIN/hyperrec" --config config/hyperrec.json --listen "$LISTEN" \
  --redis "127.0.0.1:$REDIS_PORT" --models "$VAR/models" \
  2> >(trap '' INT; exec tee "$VAR/hyperrec.log" >&2) &
pids+=($!)
SERVER=$!
ready() { # this server (not another one on the port) listens and is ready
  kill -0 "$SERVER" 2>/dev/null &&
    grep -q '"event":"listening"' "$VAR/hyperrec.log" 2>/dev/null &&
    curl -sf "http://$LISTEN/readyz" >/dev/null 2>&1
}
for _ in $(seq 1 200); do
  ready && break
  kill -0 "$SERVER" 2>/dev/null || break # it exited: no use waiting
  sleep 0.05
done
if ! ready; then
  echo "demo: the server is not ready on $LISTEN (its log: $VAR/hyperrec.log)."
  echo "demo: if the port is taken, pick another: HR_DEMO_LISTEN=127.0.0.1:8091 make run"
  exit 1
fi

cat <<MSG

hyperrec demo is running on http://$LISTEN (Ctrl-C stops it). Try:

  curl -s -X POST http://$LISTEN/recommend -H 'Content-Type: application/json' -H 'Authorization: Bearer $API_KEY' \\
       -d '{"user_id":"$USER","k":5}'

  curl -s -X POST http://$LISTEN/event -H 'Content-Type: application/json' -H 'Authorization: Bearer $TOKEN' \\
       -d '{"user_id":"$USER","item_id":"$ITEM","type":"click","context":{"mood":"happy"}}'

  curl -s -X POST http://$LISTEN/recommend -H 'Content-Type: application/json' \\
       -d '{"history":["$ITEM"],"k":5,"context":{"location":"gym"}}'

The first uses the demo's API key (for servers), the second a user token
for $USER that expires in a day (for browsers; \`bin/hyperrec token --user ID\`
with HYPERREC_AUTH_TOKEN_SECRETS from $CREDS signs others); the third
needs no credentials (no user_id). Without credentials /event and
/recommend for a user answer 401 (docs/security.md).

Also: /healthz /readyz /metrics /models (GET).

The console: http://$LISTEN/ui/ (under Credentials, paste the API key
$API_KEY; docs/console.md).
MSG
wait "${pids[-1]}"
