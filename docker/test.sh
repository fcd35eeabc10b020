#!/usr/bin/env bash
# docker/test.sh: prove the container in a real Docker engine. Run by .ci/run after the tests, as root.
#
# Installs what it needs from Debian (docker.io, docker-compose, debootstrap), starts its own dockerd on
# its own socket (stopped by its PID at the end, also on failure), makes local base images
# (docker/base-images.sh: nothing is pulled), builds docker/Dockerfile offline (crates vendored into
# docker/offline/vendor), then checks the image against `witness-trap sim` on the host: one PASS/FAIL line
# per check, "N passed, N failed", the run time, and a non-zero exit on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${WITNESS_TRAP_DOCKER_WORK:-$root/docker/test-work}
started=$(date +%s)
passed=0
failed=0
mkdir -p "$work"
log=$work/test.log
: >"$log"

say() { printf '%s\n' "$*"; }
pass() { say "PASS $1"; passed=$((passed + 1)); }
fail() { say "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
# check NAME COMMAND...: PASS if the command succeeds.
check() {
  local name=$1; shift
  if "$@" >>"$log" 2>&1; then pass "$name"; else fail "$name" "see $log"; fi
}
die() { say "FATAL $*"; finish; }

# --- what it needs ----------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  # The packages would start the system's dockerd: a temporary policy-rc.d forbids it; ours is below.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1; fi
  apt-get update -qq >>"$log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$log" 2>&1 \
    || { say "FATAL cannot install ${need[*]} (see $log)"; exit 1; }
  [ "$own_policy" = 1 ] && rm -f "$policy"
fi

# --- our own engine ---------------------------------------------------------------------------------
export DOCKER_HOST=unix://$work/docker.sock
dockerd_pid=
sim_pid=
compose_dir=$work/compose

finish() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  if [ -n "$dockerd_pid" ]; then
    [ -f "$compose_dir/compose.yaml" ] && (cd "$compose_dir" && docker-compose -f compose.yaml -f override.yaml down -v) >>"$log" 2>&1
    docker rm -f wt-trap >>"$log" 2>&1
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$dockerd_pid" 2>/dev/null
    # dockerd leaves its network namespace mounted under the exec root; nothing of ours stays mounted.
    awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  fi
  say "$passed passed, $failed failed ($(( $(date +%s) - started )) s)"
  [ "$failed" = 0 ] && exit 0 || exit 1
}
trap finish EXIT
trap 'exit 1' INT TERM

dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
  -H "$DOCKER_HOST" --storage-driver overlay2 >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || die "dockerd did not start (see $work/dockerd.log)"

# --- the image --------------------------------------------------------------------------------------
check "base images from debootstrap and this host's toolchain" bash docker/base-images.sh "$work"
check "crates vendored for an offline build" cargo vendor --locked -q docker/offline/vendor
build_started=$(date +%s)
check "docker build (docker/Dockerfile, local base images, no network)" docker build -q -f docker/Dockerfile \
  --build-arg BUILDER_IMAGE=witness-trap-builder:local --build-arg RUNTIME_IMAGE=witness-trap-runtime:local \
  -t witness-trap:local .
say "     image build: $(( $(date +%s) - build_started )) s, size $(( $(docker image inspect witness-trap:local --format '{{.Size}}' 2>/dev/null || echo 0) / 1000000 )) MB"
docker image inspect witness-trap:local >/dev/null 2>&1 || die "no image to test"
tool=witness-trap-base:local

# --- demo, and no configuration ---------------------------------------------------------------------
demo() {
  local out
  out=$(docker run --rm --network none --read-only --tmpfs /tmp witness-trap:local demo 2>&1) || return 1
  grep -q "signing key is now" <<<"$out" && grep -q "SMS sent: 1" <<<"$out"
}
check "demo with --network none: exit 0, the key swapped, the SMS sent" demo

unconfigured() {
  docker volume create wt-empty >/dev/null
  local out status
  out=$(docker run --rm -v wt-empty:/state witness-trap:local check 2>&1); status=$?
  [ "$status" = 78 ] || return 1
  for v in WITNESS_ACCOUNT RPC_URLS BACKUP_SIGNING_KEY SIGNING_WIF; do grep -q "$v" <<<"$out" || return 1; done
  ! docker run --rm -v wt-empty:/state witness-trap:local health
}
check "no configuration on an empty volume: check exits 78 naming the variables, health fails" unconfigured

# --- against witness-trap sim on the host -----------------------------------------------------------
cargo build -q --bin witness-trap >>"$log" 2>&1 || die "cannot build the host's witness-trap"
sim_bin=$root/target/debug/witness-trap

# start_sim DIR: a fresh simulated chain with new keys; sets $control, writes DIR/sim.env.
start_sim() {
  local dir=$1
  rm -rf "$dir"
  "$sim_bin" sim --port 18090 --dir "$dir" >"$dir.out" 2>"$dir.err" &
  sim_pid=$!
  for _ in $(seq 1 100); do grep -q '^control: ' "$dir.out" 2>/dev/null && break; sleep 0.2; done
  control=$(sed -n 's/^control: //p' "$dir.out")
  [ -n "$control" ]
}
stop_sim() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null; sim_pid=; }
sim_status() { curl -fsS "$control/status"; }
sim_field() { sim_status | python3 -c "import json,sys; v=json.load(sys.stdin)$1; print(v)"; }

# secrets_and_env DIR DEST: the sim's secrets as files the container's user can read, and its .env
# without the paths the container sets itself.
secrets_and_env() {
  local dir=$1 dest=$2
  mkdir -p "$dest/secrets"
  cp "$dir/signing_wif" "$dest/secrets/signing_wif"
  cp "$dir/twilio_auth_token" "$dest/secrets/twilio_auth_token"
  chmod 444 "$dest/secrets/"*
  grep -v -E '^(STATE_FILE|SIGNING_WIF_FILE|TWILIO_AUTH_TOKEN_FILE)=' "$dir/sim.env" >"$dest/.env"
}

# wait_for SECONDS COMMAND...: until the command succeeds.
wait_for() {
  local secs=$1; shift
  local until=$(( $(date +%s) + secs ))
  while [ "$(date +%s)" -lt "$until" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 2; done
  return 1
}
health_is() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$1")" = "$2" ]; }
state_json() { docker run --rm -v "$1":/state "$tool" cat /state/witness-trap-state.json; }
state_is() { state_json "$1" | python3 -c "import json,sys; sys.exit(json.load(sys.stdin)['state'] != '$2')"; }
swapped() { [ "$(sim_field "['signing_key']")" = "$(sim_field "['backup_key']")" ] && [ "$(sim_field "['sms'].__len__()")" -ge 1 ]; }

start_sim "$work/sim1" || die "witness-trap sim did not start (see $work/sim1.err)"
trapdir=$work/trap
rm -rf "$trapdir"
secrets_and_env "$work/sim1" "$trapdir"
# The compose file's hardening, by hand; the host network reaches the sim on 127.0.0.1.
hardened=(--network host --read-only --cap-drop ALL --security-opt no-new-privileges:true
  -v wt-state:/state --env-file "$trapdir/.env"
  -e STATE_FILE=/state/witness-trap-state.json
  -e SIGNING_WIF_FILE=/run/secrets/signing_wif -e TWILIO_AUTH_TOKEN_FILE=/run/secrets/twilio_auth_token
  -v "$trapdir/secrets/signing_wif:/run/secrets/signing_wif:ro"
  -v "$trapdir/secrets/twilio_auth_token:/run/secrets/twilio_auth_token:ro")
docker volume rm -f wt-state >/dev/null 2>&1
check "check against the sim exits 0" docker run --rm "${hardened[@]}" witness-trap:local check

since=$(date +%s)
docker run -d --name wt-trap "${hardened[@]}" --restart unless-stopped \
  --health-interval 3s --health-timeout 5s --health-retries 2 --health-start-period 5s \
  witness-trap:local run >>"$log" 2>&1
check "run arms and the HEALTHCHECK says healthy" wait_for 60 health_is wt-trap healthy

inside() {
  local status mounts
  status=$(docker run --rm --pid container:wt-trap "$tool" cat /proc/1/status) || return 1
  grep -qE '^Uid:\s+65532\s+65532\s+65532\s+65532' <<<"$status" || return 1
  grep -qE '^CapEff:\s+0+$' <<<"$status" && grep -qE '^CapPrm:\s+0+$' <<<"$status" || return 1
  grep -qE '^NoNewPrivs:\s+1' <<<"$status" || return 1
  mounts=$(docker run --rm --pid container:wt-trap "$tool" cat /proc/1/mountinfo) || return 1
  awk '$5 == "/" { print $6 }' <<<"$mounts" | grep -qE '(^|,)ro(,|$)' || return 1
  [ "$(docker run --rm -v wt-state:/state "$tool" stat -c '%a %u' /state)" = "700 65532" ] || return 1
  docker run --rm -v wt-state:/state "$tool" test -s /state/witness-trap-state.json
}
check "inside: uid 65532, no capabilities, NoNewPrivs, read-only root, /state 0700 and written" inside

baseline_before=$(state_json wt-state | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['baseline'], s['armed_at'])")
docker restart wt-trap >>"$log" 2>&1
restarted_armed() {
  health_is wt-trap healthy || return 1
  [ "$(state_json wt-state | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['baseline'], s['armed_at'])")" = "$baseline_before" ]
}
check "a restart of the armed container keeps its baseline" wait_for 60 restarted_armed

curl -fsS -X POST "$control/primary/down" >>"$log" 2>&1
check "the primary goes down: the swap lands on the sim and the SMS arrives" wait_for 240 swapped
exited_zero() {
  docker events --since "$since" --until "$(date +%s)" --filter container=wt-trap --filter event=die \
    --format '{{.Actor.Attributes.exitCode}}' | grep -qx 0
}
check "the container exits 0 after the fire" wait_for 60 exited_zero
idle_disarmed() {
  # Restarted by the policy (a manual `docker restart` does not count).
  [ "$(docker inspect -f '{{.State.Running}}' wt-trap)" = true ] || return 1
  [ "$(docker inspect -f '{{.RestartCount}}' wt-trap)" -ge 1 ] || return 1
  docker exec wt-trap witness-trap status | grep -q fired
}
check "it comes back idle and disarmed (status: fired)" wait_for 60 idle_disarmed
check "health turns unhealthy" wait_for 60 health_is wt-trap unhealthy
broadcasts=$(sim_field "['broadcasts']")
restarted_at=$(date +%s)
docker restart wt-trap >>"$log" 2>&1
# The restarted process says it is disarmed (waited for: a loaded machine starts it slowly), and 20 s later
# it has still sent nothing. On failure its last log lines go to the log.
says_disarmed() { docker logs --since "$restarted_at" wt-trap 2>&1 | grep -q "disarmed"; }
never_again() {
  if ! wait_for 60 says_disarmed; then
    echo "the restarted trap never said it is disarmed; its log:" >>"$log"
    docker logs --since "$restarted_at" wt-trap >>"$log" 2>&1
    return 1
  fi
  sleep 20
  local now
  now=$(sim_field "['broadcasts']")
  [ "$now" = "$broadcasts" ] || { echo "broadcasts went from $broadcasts to $now" >>"$log"; return 1; }
  state_is wt-state fired || { echo "the state is no longer fired" >>"$log"; return 1; }
}
check "a restart of the fired container never polls or signs" never_again
docker rm -f wt-trap >>"$log" 2>&1
docker volume rm -f wt-state >>"$log" 2>&1
stop_sim

# --- the compose file -------------------------------------------------------------------------------
start_sim "$work/sim2" || die "witness-trap sim did not start again (see $work/sim2.err)"
rm -rf "$compose_dir"
mkdir -p "$compose_dir"
secrets_and_env "$work/sim2" "$compose_dir"
cp docker/compose.yaml "$compose_dir/compose.yaml"
cp -r docker/monitoring "$compose_dir/monitoring"
# The local image (no build), the host network (the sim is on the host's loopback), quick health checks.
cat >"$compose_dir/override.yaml" <<'EOF'
services:
  witness-trap:
    network_mode: host
    healthcheck:
      interval: 3s
      timeout: 5s
      retries: 2
      start_period: 5s
EOF
compose() { (cd "$compose_dir" && docker-compose -p wtcompose -f compose.yaml -f override.yaml "$@"); }
check "compose config" compose config -q
check "compose up -d" compose up -d --no-build
cid() { compose ps -q witness-trap; }
compose_healthy() { health_is "$(cid)" healthy; }
check "compose: healthy" wait_for 90 compose_healthy
curl -fsS -X POST "$control/primary/down" >>"$log" 2>&1
check "compose: the primary goes down, the swap lands, the SMS arrives" wait_for 240 swapped
compose_fired() { compose exec -T witness-trap witness-trap status | grep -q fired; }
check "compose: exec status says fired" wait_for 90 compose_fired
check "compose down -v" compose down -v
stop_sim

# --- the replicas' compose file (docker/replicas/) ----------------------------------------------------
# Read as compose reads it, with an operator's .env and secrets, but not run: its etcd image cannot be
# pulled here. The coordination itself is tested against a real etcd by `cargo test --all-features`.
replicas_dir=$work/replicas
rm -rf "$replicas_dir"
mkdir -p "$replicas_dir/docker/replicas"
cp docker/replicas/compose.yaml "$replicas_dir/docker/replicas/compose.yaml"
secrets_and_env "$work/sim2" "$replicas_dir/docker/replicas"
replicas_config() {
  local out
  out=$(cd "$replicas_dir/docker/replicas" && docker-compose -p wtreplicas -f compose.yaml config) || return 1
  [ "$(grep -c 'ETCD_INITIAL_CLUSTER: etcd1=http://etcd1:2380,etcd2=http://etcd2:2380,etcd3=http://etcd3:2380' <<<"$out")" = 3 ] || return 1
  grep -q 'REPLICA_NAME: trap-a' <<<"$out" && grep -q 'REPLICA_NAME: trap-b' <<<"$out" || return 1
  grep -q 'COORDINATION: etcd' <<<"$out" && grep -q 'FEATURES: etcd' <<<"$out"
}
check "replicas compose: 3 etcd members, trap-a and trap-b with COORDINATION=etcd, built with FEATURES=etcd" replicas_config
