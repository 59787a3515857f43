#!/usr/bin/env bash
# Bring docker-compose.yml up with a real compose implementation (podman-compose, from PyPI) as
# two api replicas (`--profile replicas`) sharing the models volume and the event store, and
# check from outside: both serve the same version; a rating posted to one counts on the other;
# a new version and an admin's pin reach both; stopping one (SIGTERM) loses no request that
# reached either; the retrain loop's service runs a round whose verdict both replicas see. Exits
# non-zero on any failure.
#
#   scripts/compose_smoke.sh MODELS_VOLUME
#
# MODELS_VOLUME holds trained versions (scripts/container_smoke.sh calls this with its own, the
# newest trained from its own event store); it is copied into the project's models volume, and
# the replicas start on a fresh data volume: a new event store, another identity. A version
# learned from another store skips none of this one's events (the first rating posted here has
# an id the version's own store had already handed out, and must count). The images are
# container_smoke's (localhost/recsys-runtime:smoke), tagged as the compose file names them.
set -euo pipefail
cd "$(dirname "$0")/.."

SOURCE_VOLUME=${1:?usage: scripts/compose_smoke.sh MODELS_VOLUME}
PROJECT=recsys-replicas-$$
PORT_A=${SMOKE_PORT_A:-18081}
PORT_B=${SMOKE_PORT_B:-18082}
TOKEN=smoke-admin-token
WORK=$(mktemp -d)

log() { printf '[compose_smoke] %s\n' "$*" >&2; }

# podman as container_smoke runs it: the runc runtime (crun fails on these machines).
{ cat /etc/containers/containers.conf 2>/dev/null || true; printf '[engine]\nruntime = "runc"\n'; } \
    >"$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"
export RECSYS_API_PORT=$PORT_A RECSYS_API_2_PORT=$PORT_B RECSYS_POLL_SECONDS=1
export RECSYS_ADMIN_TOKEN=$TOKEN
compose=("$WORK/venv/bin/podman-compose" -p "$PROJECT" -f docker-compose.yml --profile replicas)

cleanup() {
    "${compose[@]}" down -v >/dev/null 2>&1 || true
    podman volume rm -f "${PROJECT}_models" "${PROJECT}_data" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "installing podman-compose from the package index"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q podman-compose==1.6.0 >"$WORK/pip.log" 2>&1 ||
    { tail -5 "$WORK/pip.log" >&2; exit 1; }

podman tag localhost/recsys-runtime:smoke localhost/recsys:latest
podman volume create "${PROJECT}_models" >/dev/null
podman volume export "$SOURCE_VOLUME" | podman volume import "${PROJECT}_models" -

log "up: api on :$PORT_A and api-2 on :$PORT_B, one models volume, a fresh event store"
"${compose[@]}" up -d --no-build api api-2 >"$WORK/up.log" 2>&1 || { tail -30 "$WORK/up.log" >&2; exit 1; }
A=http://127.0.0.1:$PORT_A B=http://127.0.0.1:$PORT_B
for base in "$A" "$B"; do
    for _ in $(seq 1 120); do curl -sf "$base/ready" >/dev/null && break; sleep 1; done
    curl -sf "$base/ready" >/dev/null || { "${compose[@]}" logs >&2; exit 1; }
done

version() { curl -sf "$1/models" | sed 's/.*"version":\([0-9]*\).*/\1/'; }
both_serve() {
    for _ in $(seq 1 60); do
        [ "$(version "$A")" = "$1" ] && [ "$(version "$B")" = "$1" ] && return 0
        sleep 1
    done
    log "not both on version $1: api $(version "$A"), api-2 $(version "$B")"; exit 1
}
V=$(version "$A")
both_serve "$V"
log "both serve version $V"
store_id=$(curl -sf "$A/ready" | sed 's/.*"id":"\([^"]*\)".*/\1/')
learned_from=$(podman run --rm --runtime runc -v "${PROJECT}_models:/models" --entrypoint python3 \
    localhost/recsys-runtime:smoke -c "
import json; m = json.load(open('/models/movielens/$V/manifest.json'))
print((m.get('events') or {}).get('store_id'))")
[ -n "$store_id" ] && [ "$store_id" != "$learned_from" ] ||
    { log "expected a fresh store (got $store_id; the version learned from $learned_from)"; exit 1; }

# A rating posted to api counts on api-2 (the shared store, read every RECSYS_SYNC_SECONDS).
item=$(curl -sf "$A/recommend/compose-user?n=1" | sed 's/.*"item_id":"\([^"]*\)".*/\1/')
curl -sf -X POST "$A/events" -H 'Content-Type: application/json' \
    -d "{\"events\": [{\"user_id\": \"compose-user\", \"item_id\": \"$item\", \"rating\": 5}]}" >/dev/null
for _ in $(seq 1 30); do
    curl -sf "$B/recommend/compose-user?n=3" | grep '"source":"fold_in"' >/dev/null && break
    sleep 1
done
curl -sf "$B/recommend/compose-user?n=3" | grep '"source":"fold_in"' >/dev/null ||
    { log "api-2 did not see the rating posted to api"; exit 1; }
log "a rating posted to api was folded in on api-2: the fresh store's first event counted (store $store_id, version $V learned from $learned_from)"

# A new version in the shared volume (a renumbered copy, staged then renamed in, as training
# exports) reaches both.
NEW=$((V + 1))
podman run --rm --runtime runc -v "${PROJECT}_models:/models" --entrypoint python3 \
    localhost/recsys:latest -c "
import json, pathlib, shutil
base = pathlib.Path('/models/movielens')
staged = base / '.staging-$NEW'
shutil.copytree(base / '$V', staged)
manifest = json.loads((staged / 'manifest.json').read_text())
manifest['version'] = $NEW
(staged / 'manifest.json').write_text(json.dumps(manifest))
staged.rename(base / '$NEW')
"
both_serve "$NEW"
log "version $NEW reached both"

# An admin's pin, sent to api-2, reaches api (persisted in the shared data volume).
curl -sf -X POST -H "Authorization: Bearer $TOKEN" "$B/admin/models/$V" >/dev/null
both_serve "$V"
curl -sf -X POST -H "Authorization: Bearer $TOKEN" "$A/admin/reload" >/dev/null
both_serve "$NEW"
log "an admin's pin on api-2 reached api, and a reload on api reached api-2"

# The retrain loop's service (`--profile loop`), one round: a few users rate films on api, the
# round holds out their newest, trains a small candidate in the trainer image from the shared
# volumes and writes its verdict to the store, where api-2 shows it; a published candidate
# reaches both replicas. The data set is fetched into the data volume first, as
# container_smoke's trainer fetches it (host network, pip's CA bundle).
cert=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}
cert_run=()
[ -n "$cert" ] && [ -f "$cert" ] && cert_run=(-v "$cert:/etc/pip-ca.crt:ro" -e PIP_CERT=/etc/pip-ca.crt)
podman tag localhost/recsys-trainer:smoke localhost/recsys-trainer:latest
podman run --rm --runtime runc --network host "${cert_run[@]}" -v "${PROJECT}_data:/data" \
    --entrypoint recsys localhost/recsys-trainer:latest fetch ml-100k --data-dir /data \
    >"$WORK/fetch.log" 2>&1 || { tail -20 "$WORK/fetch.log" >&2; exit 1; }
for user in 1 2 3; do
    items=$(curl -sf "$A/popular?n=$((4 + user))" | grep -o '"item_id":"[^"]*"' | cut -d'"' -f4 | tail -4)
    body=$(for item in $items; do printf '{"user_id":"loop-%s","item_id":"%s","rating":%s},' \
        "$user" "$item" "$((user + 2))"; done)
    curl -sf -X POST "$A/events" -H 'Content-Type: application/json' \
        -d "{\"events\": [${body%,}]}" >/dev/null
done
set +e
"${compose[@]}" --profile loop run --rm retrain --once --min-new-events 1 \
    --epochs 1 --retrieval-epochs 1 --no-item-item >"$WORK/retrain.log" 2>&1
verdict_rc=$?
set -e
grep -h "^round\|^gate" "$WORK/retrain.log" >&2 || true
[ "$verdict_rc" -le 1 ] || { tail -30 "$WORK/retrain.log" >&2; exit 1; }
expected=refused
[ "$verdict_rc" = 0 ] && expected=passed
rounds=$(curl -sf -H "Authorization: Bearer $TOKEN" "$B/admin/online" | python3 -c "
import json, sys
rounds = json.load(sys.stdin)['retrain']
print(' '.join(f\"{r['verdict']}:{r['baseline_version']}:{r['held_out_users']}\" for r in rounds))")
[ "$rounds" = "$expected:$NEW:3" ] ||
    { log "api-2 shows the rounds '$rounds', expected '$expected:$NEW:3'"; tail -30 "$WORK/retrain.log" >&2; exit 1; }
if [ "$verdict_rc" = 0 ]; then
    NEW=$((NEW + 1))
    both_serve "$NEW"
fi
log "the compose retrain service ran one round against version $((verdict_rc == 0 ? NEW - 1 : NEW)): $expected (exit $verdict_rc), written to the shared store and shown by api-2; both serve version $NEW"

# Stop api (SIGTERM) under steady traffic to both: every answer from api-2 is a 200, and api
# answers 200 until it refuses connections (000: nothing reached it), never an error.
traffic() {  # $1 base, $2 output file: one status code per line for ~12 s
    local end=$((SECONDS + 12))
    while [ $SECONDS -lt $end ]; do
        curl -s -o /dev/null -m 10 -w '%{http_code}\n' "$1/recommend/196?n=5" || true
    done >"$2"
}
traffic "$A" "$WORK/a.codes" & pa=$!
traffic "$B" "$WORK/b.codes" & pb=$!
sleep 3
"${compose[@]}" stop api >"$WORK/stop.log" 2>&1
wait "$pa" "$pb"
b_bad=$(grep -vc '^200$' "$WORK/b.codes" || true)
a_bad=$(grep -v '^200$' "$WORK/a.codes" | grep -vc '^000$' || true)
a_ok=$(grep -c '^200$' "$WORK/a.codes" || true)
log "while api stopped: api-2 answered $(wc -l <"$WORK/b.codes") requests ($b_bad not 200);" \
    "api answered $a_ok with 200 before it stopped, $a_bad errors"
[ "$b_bad" = 0 ] && [ "$a_bad" = 0 ] && [ "$a_ok" -gt 0 ] || exit 1
podman logs "${PROJECT}_api_1" >"$WORK/api.log" 2>&1 || true
grep -q "Finished server process" "$WORK/api.log" ||
    { log "api did not shut down cleanly"; tail -20 "$WORK/api.log" >&2; exit 1; }
curl -sf "$B/ready" >/dev/null
log "OK: two replicas from docker-compose.yml (podman-compose): same version, shared events, new version and admin pin on both, a retrain round seen by both, one stopped with no lost request"
