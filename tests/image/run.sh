#!/usr/bin/env bash
# tests/image/run.sh -- `make image-test`: build the image (deploy/image.sh)
# and run it as a user would, against a Redis on 127.0.0.1:
#   1. the image's trainer generates data and trains a model into a volume;
#   2. the server starts from the image (its own user, its ENTRYPOINT's
#      program) on a free loopback port and loads it;
#   3. the image's HEALTHCHECK command, /healthz, /readyz, a /recommend and
#      an /event (found in Redis's stream); then the Kubernetes CronJob's
#      command retrains on a history file and the stream together, and the
#      server loads the new version;
#   4. SIGTERM: the server drains and exits 0.
# buildah runs the container (chroot isolation, host network: no Docker
# engine here). Ends with "N passed, N failed"; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

TAG=hyperrec:image-test
work=$(mktemp -d /tmp/hr-image-test.XXXXXX)
ctr="" srv_pid="" redis_pid=""

SUITE=image-test
# shellcheck source=tests/lib/checks.sh
. tests/lib/checks.sh
cleanup() {
  [ -n "$srv_pid" ] && kill -KILL "$srv_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build"
if ! deploy/image.sh "$TAG" | tee "$work/build.log"; then
  bad "image builds"
  summary
  exit 1
fi
ok "image builds ($(sed -n 's/.*built [^,]*, //p' "$work/build.log"))"

# The image's own settings, read back from its configuration.
buildah inspect --type image "$TAG" >"$work/image.json"
cfg() { python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))["Docker"]["config"]
v = c.get(sys.argv[2])
print(" ".join(v) if isinstance(v, list) else (v or ""))' "$work/image.json" "$@"; }
cfg_user=$(cfg User)
check "runs as a numeric non-root user ($cfg_user)" \
  bash -c '[[ "$0" =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]' "$cfg_user"
hc=$(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["Docker"]["config"].get("Healthcheck", {}).get("Test", [])
print(" ".join(t[1:]) if t[:1] == ["CMD"] else "")' "$work/image.json")
check "has a HEALTHCHECK (${hc:-none})" [ -n "$hc" ]
entrypoint=$(cfg Entrypoint)

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_for redis 100 redis-cli -p "$rport" ping || exit 1

mkdir -p "$work/models" "$work/data"
chown -R 10001:10001 "$work/models" "$work/data"
ctr=$(buildah from -q "$TAG")
# An API key, as a deployment gives one (docs/security.md): its hash in
# the environment, the key in the callers' Authorization header.
key=hrk_image_test_$$
key_hash=$(run_plain() { buildah run --isolation chroot "$ctr" -- "$@"; }; run_plain hyperrec hash-key "$key")
# run CMD...: a command in the container as its configured user, with the
# volumes and loopback network a `docker run --network host -v` would give.
run() {
  buildah run --isolation chroot --network host \
    -v "$work/models:/models" -v "$work/data:/data" \
    -e HYPERREC_REDIS="127.0.0.1:$rport" -e HYPERREC_LISTEN="127.0.0.1:$port" \
    -e HYPERREC_AUTH_API_KEYS="image-test:$key_hash" \
    "$ctr" -- "$@"
}
port=$(free_port)

echo "== train inside the image"
check "the image's trainer generates data" \
  run hyperrec-train gen --out /data --seed 3 --users 300 --items 120 \
    --events 6000 --context-effect 2
check "the image's trainer fits a model" \
  bash -c 'run() { buildah run --isolation chroot --network host -v "$1/models:/models" -v "$1/data:/data" "$2" -- "${@:3}"; }
           run "$0" "$1" hyperrec-train fit --data /data/events.csv \
             --items /data/items.csv --kind ials --out /models/default --quiet \
             >"$0/fit.out"' "$work" "$ctr"
check "the model files belong to the image's user" \
  bash -c '[ "$(stat -c %u "$(ls -d "$0"/models/default/[0-9]* | head -1)")" = 10001 ]' "$work"

echo "== serve"
# shellcheck disable=SC2086 # the entrypoint's words
run $entrypoint >"$work/server.log" 2>&1 &
runner=$!
base="http://127.0.0.1:$port"
wait_for "/healthz" 300 curl -fsS "$base/healthz"
srv_pid=$(pgrep -u 10001 -f '^/usr/local/bin/hyperrec$' | head -1)
check "the server runs as uid 10001 (pid ${srv_pid:-none})" \
  bash -c '[ -n "$0" ] && [ "$(ps -o uid= -p "$0" | tr -d " ")" = 10001 ]' "$srv_pid"
check "/healthz answers 200" curl -fsS -o /dev/null "$base/healthz"
# shellcheck disable=SC2086
check "the HEALTHCHECK command follows the configured port ($hc)" run $hc
wait_for "/readyz" 300 curl -fsS "$base/readyz"
check "/readyz answers 200 with a model" \
  bash -c 'curl -fsS "$0/readyz" | grep -q "\"model\"" ' "$base"
user=$(sed -n 2p "$work/data/events.csv" | cut -d, -f1)
item=$(sed -n 2p "$work/data/items.csv" | cut -d, -f1)
curl -sS -o "$work/rec.json" -w '%{http_code}' -H 'content-type: application/json' \
  -H "authorization: Bearer $key" \
  -d "{\"user_id\":\"$user\",\"k\":5}" "$base/recommend" >"$work/rec.code"
check "/recommend answers 200 with 5 items" python3 -c '
import json, sys
code = open(sys.argv[1] + "/rec.code").read()
r = json.load(open(sys.argv[1] + "/rec.json"))
sys.exit(0 if code == "200" and len(r["items"]) == 5 else 1)' "$work"
code=$(curl -sS -o "$work/ev.json" -w '%{http_code}' -H 'content-type: application/json' \
  -H "authorization: Bearer $key" \
  -d "{\"user_id\":\"$user\",\"type\":\"click\",\"item_id\":\"$item\",\"event_id\":\"img-1\"}" \
  "$base/event")
check "/event answers 202 and the stream holds it" \
  bash -c '[ "$0" = 202 ] && redis-cli -p "$1" XRANGE hr:events - + | grep -q img-1' \
  "$code" "$rport"

echo "== retrain as the CronJob does"
# deploy/kubernetes.yaml's CronJob command, run in the image: a history
# file in the models volume and the server's stream (Redis on loopback
# here instead of the Service "redis").
cron=$(python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open("deploy/kubernetes.yaml")):
    if d and d["kind"] == "CronJob":
        c = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        print(c["args"][0])')
# The history export: the generated events moved to the last 30 days, so
# that the CronJob's --since 90d keeps them.
mkdir -p "$work/models/history"
python3 - "$work/data/events.csv" "$work/models/history/events.csv" <<'PY'
import csv, sys, time
rows = list(csv.reader(open(sys.argv[1])))
ts = rows[0].index("ts")
shift = int(time.time()) - 3600 - max(int(r[ts]) for r in rows[1:])
for r in rows[1:]:
    r[ts] = str(max(int(r[ts]) + shift, int(time.time()) - 30 * 86400))
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
PY
history_rows=$(( $(wc -l <"$work/models/history/events.csv") - 1 ))
chown -R 10001:10001 "$work/models/history"
v_before=$(ls "$work/models/default" | sort -n | tail -1)
check "the CronJob's fit runs in the image (file + stream; --kind ials for time)" \
  run /bin/sh -c "${cron//redis:6379/127.0.0.1:$rport} --kind ials >/dev/null"
v_after=$(ls "$work/models/default" | sort -n | tail -1)
check "it read all $history_rows history rows and the stream (data.sources)" python3 -c '
import json, sys
d = json.load(open(sys.argv[1] + "/manifest.json"))["data"]
s = d["sources"]
ok = [x["format"] for x in s] == ["csv", "redis-stream"] and \
    s[0]["rows"] == int(sys.argv[2]) and s[1]["rows"] >= 1 and \
    d["rows_before_since"] == 0
print(json.dumps(s))
sys.exit(0 if ok else 1)' "$work/models/default/$v_after" "$history_rows"
wait_for "the server to load $v_after" 300 \
  bash -c 'curl -fsS "$0/models" | grep -q "\"version\":$1"' "$base" "$v_after"
check "the server serves the retrained version ($v_before -> $v_after)" \
  bash -c '[ "$1" != "$2" ] && curl -fsS "$0/models" | grep -q "\"version\":$2"' \
  "$base" "$v_before" "$v_after"

echo "== stop"
kill -TERM "$srv_pid"
wait "$runner"
rc=$?
srv_pid=""
check "SIGTERM: exit status 0 (got $rc)" [ "$rc" = 0 ]
check "SIGTERM: drained and logged \"stopped\"" grep -q '"stopped"' "$work/server.log"
[ "$fail" = 0 ] || { echo "--- server log"; tail -20 "$work/server.log"; }
summary
