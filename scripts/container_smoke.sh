#!/usr/bin/env bash
# Build the images with podman, train a small model with the trainer image into a volume, serve
# it with the runtime image and check /ready, /predict and /recommend from outside the
# container, then bring docker-compose.yml up as two replicas (scripts/compose_smoke.sh). Exits
# non-zero on any failure; skips (exit 0, saying why) only where podman is
# missing and cannot be installed. It removes the images its previous run built before building
# its own (tagged :smoke, kept for a look afterwards), and stops early when the disk is short.
#
# No registry is reachable here, so the base image is built locally once with debootstrap from
# the Debian mirror apt already uses (cached as recsys-base:bookworm). pip inside the build uses
# the host's pip index settings when it has any (passed as build arguments).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_TAG=${BASE_TAG:-localhost/recsys-base:bookworm}
PORT=${SMOKE_PORT:-18080}
WORK=$(mktemp -d)
CONTAINER=recsys-smoke-$$
MODELS_VOLUME=recsys-smoke-models-$$
STORE_VOLUME=recsys-smoke-store-$$

log() { printf '[container_smoke] %s\n' "$*" >&2; }

cleanup() {
    podman --runtime runc rm -f "$CONTAINER" >/dev/null 2>&1 || true
    podman volume rm -f "$MODELS_VOLUME" "$STORE_VOLUME" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! command -v podman >/dev/null 2>&1; then
    log "podman missing: installing podman, runc and debootstrap from Debian's packages"
    if ! { as_root apt-get update -qq && as_root apt-get install -y -qq podman runc debootstrap; } \
        >"$WORK/apt.log" 2>&1; then
        log "SKIPPED: podman is not installed and cannot be installed here ($(tail -1 "$WORK/apt.log"))"
        exit 0
    fi
fi
if [ ! -f /etc/containers/containers.conf ]; then
    # What made podman run on these machines: no default ulimits, no pids limit.
    as_root mkdir -p /etc/containers
    printf '[containers]\ndefault_ulimits = []\npids_limit = 0\n' |
        as_root tee /etc/containers/containers.conf >/dev/null
fi
PODMAN=(podman --runtime runc)

if ! "${PODMAN[@]}" image exists "$BASE_TAG"; then
    command -v debootstrap >/dev/null 2>&1 || as_root apt-get install -y -qq debootstrap
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    log "building the base image $BASE_TAG with debootstrap (about 2 minutes)"
    rootfs="$WORK/rootfs"
    as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    as_root tar -C "$rootfs" -c . | "${PODMAN[@]}" import --quiet - "$BASE_TAG" >/dev/null
    as_root rm -rf "$rootfs"
fi

pip_args=()
for key in index-url extra-index-url; do
    value=$(pip config get "global.$key" 2>/dev/null || true)
    var=PIP_$(echo "$key" | tr 'a-z-' 'A-Z_')
    value=${!var:-$value}
    # Only network indexes make sense inside the build; file:// ones are this host's disk.
    value=$(printf '%s\n' $value | grep -v '^file:' | paste -sd' ' || true)
    [ -n "$value" ] && pip_args+=(--build-arg "$var=$value")
done

# The CA bundle pip trusts (a TLS-inspecting proxy's CA lives there on some machines): a build
# secret for the build, a read-only mount for the trainer's `recsys fetch`.
cert=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}
cert_build=() cert_run=()
if [ -n "$cert" ] && [ -f "$cert" ]; then
    cert_build=(--secret "id=pip_cert,src=$cert")
    cert_run=(-v "$cert:/etc/pip-ca.crt:ro" -e PIP_CERT=/etc/pip-ca.crt)
fi

# Every build leaves the previous run's images untagged (about 3.5 GB a run): a machine that runs
# this daily fills its disk in weeks. The images built here carry SMOKE_LABEL; the previous run's
# are removed before building, and the build needs NEED_GB free where podman keeps its images.
SMOKE_LABEL=org.recsys.smoke=1
NEED_GB=${SMOKE_NEED_GB:-8}
"${PODMAN[@]}" rmi localhost/recsys-runtime:smoke localhost/recsys-trainer:smoke \
    localhost/recsys:latest localhost/recsys-trainer:latest >/dev/null 2>&1 || true
"${PODMAN[@]}" image prune -f --filter "label=$SMOKE_LABEL" >/dev/null
graph_root=$("${PODMAN[@]}" info --format '{{.Store.GraphRoot}}')
free_gb() { df -P --block-size=1G "$graph_root" | awk 'NR == 2 {print $4}'; }
if [ "$(free_gb)" -lt "$NEED_GB" ]; then
    # Untagged images are only reachable by id; older runs of this script (before the label)
    # left theirs unlabelled.
    log "only $(free_gb) GB free under $graph_root (the build needs $NEED_GB): removing untagged images"
    "${PODMAN[@]}" image prune -f >/dev/null
fi
if [ "$(free_gb)" -lt "$NEED_GB" ]; then
    log "FAILED: only $(free_gb) GB free under $graph_root; building the images needs $NEED_GB GB" \
        "(see \`podman system df\`)"
    exit 1
fi

for target in runtime trainer; do
    log "building recsys:$target"
    "${PODMAN[@]}" build --network host --label "$SMOKE_LABEL" --build-arg "BASE_IMAGE=$BASE_TAG" \
        "${pip_args[@]}" "${cert_build[@]}" \
        --target "$target" -t "localhost/recsys-$target:smoke" . >"$WORK/build-$target.log" 2>&1 ||
        { tail -30 "$WORK/build-$target.log" >&2; exit 1; }
done

log "training a small model with the trainer image"
"${PODMAN[@]}" volume create "$MODELS_VOLUME" >/dev/null
"${PODMAN[@]}" run --rm --network host -v "$MODELS_VOLUME:/models" "${cert_run[@]}" \
    localhost/recsys-trainer:smoke --epochs 2 --retrieval-epochs 2 >"$WORK/train.log" 2>&1 ||
    { tail -30 "$WORK/train.log" >&2; exit 1; }
grep -h "exported" "$WORK/train.log" >&2

log "serving it with the runtime image on 127.0.0.1:$PORT, read-only root filesystem"
# --read-only: nothing in the image is writable (podman still mounts a tmpfs on /tmp and /run);
# the event store lives in its own volume at /data.
"${PODMAN[@]}" volume create "$STORE_VOLUME" >/dev/null
"${PODMAN[@]}" run -d --name "$CONTAINER" --network host -e "RECSYS_PORT=$PORT" --read-only \
    -v "$MODELS_VOLUME:/models:ro" -v "$STORE_VOLUME:/data" localhost/recsys-runtime:smoke >/dev/null
for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null; then break; fi
    sleep 1
done
curl -sf "http://127.0.0.1:$PORT/ready" >&2 || { "${PODMAN[@]}" logs "$CONTAINER" | tail -30 >&2; exit 1; }
echo >&2
curl -sf -X POST "http://127.0.0.1:$PORT/predict" -H 'Content-Type: application/json' \
    -d '{"instances": [{"user_id": 196, "item_id": 242}]}' | tee "$WORK/predict.json" >&2
echo >&2
grep -q '"predictions":\[' "$WORK/predict.json"
curl -sf "http://127.0.0.1:$PORT/recommend/196?n=3" | tee "$WORK/recommend.json" >&2
echo >&2
grep -q '"items":\[{"item_id"' "$WORK/recommend.json"
# The web page and its files came with the installed wheel. (`grep -q` after a pipe would stop
# reading at its first match, and curl would then fail to write the rest: exit code 23.)
curl -sf "http://127.0.0.1:$PORT/" | grep '<title>recsys: try the recommender</title>' >/dev/null
curl -sf "http://127.0.0.1:$PORT/static/app.js" | grep 'fetch(path' >/dev/null
# The event store is on: a new user's rating is stored and never recommended back to them.
first=$(curl -sf "http://127.0.0.1:$PORT/recommend/smoke-user?n=1" | sed 's/.*"item_id":"\([^"]*\)".*/\1/')
curl -sf -X POST "http://127.0.0.1:$PORT/events" -H 'Content-Type: application/json' \
    -d "{\"events\": [{\"user_id\": \"smoke-user\", \"item_id\": \"$first\", \"rating\": 5}]}" >&2
echo >&2
curl -sf "http://127.0.0.1:$PORT/recommend/smoke-user?n=3" | tee "$WORK/after.json" >&2
echo >&2
grep -q '"source":"fold_in"' "$WORK/after.json" && ! grep -q "\"item_id\":\"$first\"" "$WORK/after.json" ||
    { log "the rated item came back, or the store is off, or no fold-in"; exit 1; }

log "training again with the trainer image, from the data set and the api's event store"
"${PODMAN[@]}" run --rm --network host -v "$MODELS_VOLUME:/models" -v "$STORE_VOLUME:/data" \
    "${cert_run[@]}" localhost/recsys-trainer:smoke --epochs 2 --retrieval-epochs 2 \
    >"$WORK/train2.log" 2>&1 || { tail -30 "$WORK/train2.log" >&2; exit 1; }
grep -h "event store\|exported" "$WORK/train2.log" >&2
grep -q "event store sqlite:events.sqlite3: 1 ratings" "$WORK/train2.log" ||
    { log "the trainer did not read the event store"; exit 1; }
# The api swaps to version 2 by itself; the smoke user is then a trained user of it.
for _ in $(seq 1 60); do
    if curl -sf "http://127.0.0.1:$PORT/recommend/smoke-user?n=3" | tee "$WORK/after2.json" |
        grep -q '"source":"model"'; then break; fi
    sleep 1
done
cat "$WORK/after2.json" >&2; echo >&2
grep -q '"source":"model"' "$WORK/after2.json" && grep -q '"version":2' "$WORK/after2.json" &&
    ! grep -q "\"item_id\":\"$first\"" "$WORK/after2.json" ||
    { log "the api did not swap to the version trained from its store"; exit 1; }
[ "$("${PODMAN[@]}" exec "$CONTAINER" id -u)" != 0 ] || { log "the api runs as root"; exit 1; }
if "${PODMAN[@]}" exec "$CONTAINER" sh -c 'touch /opt/venv/x || touch /home/recsys/x' 2>/dev/null; then
    log "the root filesystem is writable"; exit 1
fi

log "stopping it (SIGTERM): it must shut down cleanly, not be killed after the grace period"
"${PODMAN[@]}" stop -t 30 "$CONTAINER" >/dev/null
"${PODMAN[@]}" logs "$CONTAINER" >"$WORK/api.log" 2>&1
grep -q "Finished server process" "$WORK/api.log" || { tail -30 "$WORK/api.log" >&2; exit 1; }

log "the compose file, brought up as two replicas on the versions trained above"
scripts/compose_smoke.sh "$MODELS_VOLUME"
log "OK: built, trained, served read-only as non-root; /ready, /predict, /recommend, /events and the web page answered from outside; retrained from the event store and swapped; stopped cleanly"
