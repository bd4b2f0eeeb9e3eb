#!/usr/bin/env bash
# What one request of each kind costs a distributed semdock node, counted rather than timed:
# PostgreSQL statements (the database's log_statement = all, lines in the server log), S3
# requests by kind (Garage's /metrics), and the node's CPU time, each per request over N.
# The model in docs/SCALING.md follows from these figures.
#
#   export TEST_POSTGRES_URL="$(scripts/postgres start /tmp/pg)"
#   eval "$(GARAGE=… scripts/garage start /tmp/s3)"
#   PG_LOG=/tmp/pg/server.log SEMDOCK=target/release/semdock benches/request_costs.sh [N]
#
# Every server it starts listens on 127.0.0.1 and is stopped by its PID.
set -euo pipefail
n="${1:-50}"
bin="${SEMDOCK:-target/release/semdock}"
: "${TEST_POSTGRES_URL:?}" "${TEST_S3_ENDPOINT:?}" "${TEST_S3_ADMIN:?}" "${PG_LOG:?}"
work="$(mktemp -d /tmp/semdock-costs.XXXXXX)"
db="costs_$$_$RANDOM"
psql "$TEST_POSTGRES_URL" -q -c "CREATE DATABASE $db" -c "ALTER DATABASE $db SET log_statement = 'all'"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

SEMDOCK_LISTEN=127.0.0.1:0 SEMDOCK_DATA_DIR="$work/data" SEMDOCK_LOG__LEVEL=warn,semdock::server=info \
SEMDOCK_STORAGE__METADATA=postgres SEMDOCK_STORAGE__POSTGRES__URL="$TEST_POSTGRES_URL dbname=$db" \
SEMDOCK_STORAGE__BLOBS=s3 SEMDOCK_STORAGE__S3__ENDPOINT="$TEST_S3_ENDPOINT" \
SEMDOCK_STORAGE__S3__BUCKET="$TEST_S3_BUCKET" SEMDOCK_STORAGE__S3__REGION="$TEST_S3_REGION" \
SEMDOCK_STORAGE__S3__PREFIX="$db" SEMDOCK_STORAGE__S3__ACCESS_KEY_ID="$TEST_S3_ACCESS_KEY_ID" \
SEMDOCK_STORAGE__S3__SECRET_ACCESS_KEY="$TEST_S3_SECRET_ACCESS_KEY" \
  "$bin" serve 2>"$work/log" &
pid=$!
for _ in $(seq 1 100); do grep -q "addr=" "$work/log" 2>/dev/null && break; sleep 0.1; done
addr="$(grep -o 'addr=[0-9.:]*' "$work/log" | head -1 | cut -d= -f2)"
base="http://$addr"
password="$(cat "$work/data/initial-admin-password")"
token="$(curl -sf -u "admin:$password" "$base/v2/_auth?service=semdock&scope=repository:library/costs:pull,push" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
auth=(-H "Authorization: Bearer $token")

statements() { grep -cE 'LOG:  (statement|execute)' "$PG_LOG" || true; }
s3() { curl -s -H "Authorization: Bearer $TEST_S3_ADMIN_TOKEN" "$TEST_S3_ADMIN/metrics" | awk '/^api_s3_request_counter/ {split($1, a, "\""); c[a[2]] = $2} END {for (k in c) print k, c[k]}' | sort; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# Measures `$@` run N times: statements, S3 requests by kind and CPU milliseconds per request.
measure() {
  local label="$1"; shift
  sleep 0.5
  local st0 cpu0 s30; st0="$(statements)"; cpu0="$(cpu)"; s30="$(s3)"
  for i in $(seq 1 "$n"); do "$@" "$i"; done
  sleep 0.5
  local st1 cpu1 s31; st1="$(statements)"; cpu1="$(cpu)"; s31="$(s3)"
  local requests
  requests="$(join -a2 -e0 -o 0,1.2,2.2 <(echo "$s30") <(echo "$s31") | awk -v n="$n" '$3 > $2 {printf "%s %.2f, ", $1, ($3 - $2) / n}')"
  printf '%-34s SQL statements %5.2f  CPU %5.2f ms  S3: %s\n' "$label" \
    "$(echo "($st1 - $st0) / $n" | bc -l)" "$(echo "($cpu1 - $cpu0) * 10 / $n" | bc -l)" "${requests:-none}"
}

head -c $((1 << 20)) /dev/urandom >"$work/layer"
config='{"architecture":"amd64","os":"linux"}'
printf '%s' "$config" >"$work/config"
sha() { sha256sum "$1" | cut -d' ' -f1; }
curl -sf "${auth[@]}" -X POST --data-binary @"$work/config" "$base/v2/library/costs/blobs/uploads/?digest=sha256:$(sha "$work/config")" >/dev/null
curl -sf "${auth[@]}" -X POST --data-binary @"$work/layer" "$base/v2/library/costs/blobs/uploads/?digest=sha256:$(sha "$work/layer")" >/dev/null
manifest() {
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}],"annotations":{"n":"%s"}}' \
    "$(sha "$work/config")" "${#config}" "$(sha "$work/layer")" $((1 << 20)) "$1"
}
push_manifest() {
  manifest "$1" | curl -sf "${auth[@]}" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @- "$base/v2/library/costs/manifests/t$1" >/dev/null
}
get_manifest() {
  curl -sf "${auth[@]}" -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o /dev/null "$base/v2/library/costs/manifests/t1"
}
head_manifest() {
  curl -sf "${auth[@]}" -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o /dev/null "$base/v2/library/costs/manifests/t1"
}
get_blob() {
  curl -sf "${auth[@]}" -o /dev/null "$base/v2/library/costs/blobs/sha256:$(sha "$work/layer")"
}
upload_monolithic() {
  head -c $((1 << 20)) /dev/urandom >"$work/u"
  curl -sf "${auth[@]}" -X POST --data-binary @"$work/u" "$base/v2/library/costs/blobs/uploads/?digest=sha256:$(sha "$work/u")" >/dev/null
}
upload_chunked() {
  head -c $((3 << 20)) /dev/urandom >"$work/c"
  local location
  location="$(curl -sf "${auth[@]}" -X POST -D - -o /dev/null "$base/v2/library/costs/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')"
  for k in 0 1 2; do
    dd if="$work/c" bs=1M skip=$k count=1 status=none | curl -sf "${auth[@]}" -X PATCH \
      -H 'Content-Type: application/octet-stream' -H "Content-Range: $((k << 20))-$((((k + 1) << 20) - 1))" \
      --data-binary @- "$base$location" >/dev/null
  done
  curl -sf "${auth[@]}" -X PUT "$base$location?digest=sha256:$(sha "$work/c")" >/dev/null
}

echo "semdock $("$bin" --version 2>/dev/null | head -1), one node on PostgreSQL and S3, $n requests each"
measure "manifest push (new tag)" push_manifest
get_manifest 0
measure "manifest GET by tag (warm)" get_manifest
measure "manifest HEAD by tag (warm)" head_manifest
measure "blob GET 1 MiB" get_blob
measure "blob upload 1 MiB, monolithic" upload_monolithic
measure "blob upload 3 MiB, 3 PATCH + PUT" upload_chunked
