#!/usr/bin/env bash
# The token and redeem paths, where the server checks the signed log before
# it acts: GET of an allowed Gate request (answers may_proceed and the
# approval token) and POST /api/tokens/redeem (each run redeems fresh tokens
# made just before it by create.lua). Needs GATEHOUSE_BENCH_BASELINE: the
# figures are this build against that revision, runs alternating.
#
#   GATEHOUSE_BENCH_BASELINE=<rev> bench/paths.sh [seconds per run, default 5] [runs, default 3] [stores]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5}"
RUNS="${2:-3}"
STORES="${*:3}"
STORES="${STORES:-sqlite postgres}"
PG_URL="${GATEHOUSE_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
[ -n "${GATEHOUSE_BENCH_BASELINE:-}" ] || { echo "set GATEHOUSE_BENCH_BASELINE to the revision to compare with" >&2; exit 2; }
source bench/lib.sh
CONNS=8

# One allowed request on the server; prints the path to GET it.
allowed_path() { # url key
    local id
    id=$(curl -fsS -H "x-api-key: $2" -H 'content-type: application/json' \
        -d '{"workflow_name":"Customer Support","tool_name":"issue_refund","subject":"Issue a $500 refund to customer cus_99","risk_level":"low","payload":{"amount":500,"currency":"usd","customer_id":"cus_99"}}' \
        "$1/api/agent/tasks/t/requests" | sed -n 's/.*"id":"\(dec_[^"]*\)".*/\1/p')
    [ -n "$id" ] || { echo "could not create an allowed request" >&2; exit 1; }
    echo "/api/gate/requests/$id"
}

# Makes tokens for DURATION seconds, then redeems them for a third of that
# (redeeming is not slower than creating, so none is sent twice).
redeem_once() { # url key
    local tokens="$work/tokens"
    : > "$tokens"
    GATEHOUSE_BENCH_KEY=$2 GATEHOUSE_BENCH_TOKENS=$tokens WRK_THREADS=1 \
        measure_once create.lua "$1/api/agent/tasks/t/requests" "$CONNS" > /dev/null
    local made
    made=$(wc -l < "$tokens")
    local full=$DURATION
    DURATION=$(( full / 3 > 0 ? full / 3 : 1 ))
    GATEHOUSE_BENCH_KEY=$2 GATEHOUSE_BENCH_TOKENS=$tokens WRK_THREADS=1 \
        measure_once redeem.lua "$1/api/tokens/redeem" "$CONNS" > "$work/redeem.one"
    DURATION=$full
    local sent
    sent=$(awk '{ printf "%d", $1 * '"$(( full / 3 > 0 ? full / 3 : 1 ))"' }' "$work/redeem.one")
    [ "$sent" -le "$made" ] || { echo "ran out of tokens: $made made, about $sent redeemed" >&2; exit 1; }
    cat "$work/redeem.one"
}

paths_backend() { # name "storage args" "baseline storage args"
    local name=$1
    local -a storage base_storage
    read -r -a storage <<< "$2"
    read -r -a base_storage <<< "$3"
    local pid url key base_pid base_url base_key
    read -r pid url key < <(start_server "$BIN" current "${storage[@]}")
    read -r base_pid base_url base_key < <(start_server "$BASE_BIN" baseline "${base_storage[@]}")
    local path base_path
    path=$(allowed_path "$url" "$key")
    base_path=$(allowed_path "$base_url" "$base_key")
    : > "$work/read.runs"; : > "$work/base-read.runs"; : > "$work/redeem.runs"; : > "$work/base-redeem.runs"
    for _ in $(seq "$RUNS"); do
        GATEHOUSE_BENCH_KEY=$key GATEHOUSE_BENCH_PATH=$path measure_once read.lua "$url" "$CONNS" >> "$work/read.runs"
        GATEHOUSE_BENCH_KEY=$base_key GATEHOUSE_BENCH_PATH=$base_path measure_once read.lua "$base_url" "$CONNS" >> "$work/base-read.runs"
        redeem_once "$url" "$key" >> "$work/redeem.runs"
        redeem_once "$base_url" "$base_key" >> "$work/base-redeem.runs"
    done
    local what rps p50 p99 brps bp50 bp99
    for what in read redeem; do
        read -r rps p50 p99 < <(median "$work/$what.runs")
        read -r brps bp50 bp99 < <(median "$work/base-$what.runs")
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | **%s** |\n" "$name" \
            "$( [ "$what" = read ] && echo "GET allowed request (token)" || echo "POST /api/tokens/redeem")" \
            "$CONNS" "$rps" "$p50" "$p99" "$brps" "$bp50" "$bp99" \
            "$(awk -v a="$rps" -v b="$brps" 'BEGIN { printf "%.2f", a / b }')"
    done
    kill "$pid" "$base_pid"; wait "$pid" "$base_pid" 2>/dev/null || true
}

echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); wrk on the same machine; median of ${RUNS} runs."
echo "Baseline: $BASELINE ($(git log -1 --format=%s "$BASELINE" | cut -c1-80)), run beside this build ($(git rev-parse --short HEAD))."
echo
echo "| store | path | conns | req/s | p50 ms | p99 ms | baseline req/s | baseline p50 ms | baseline p99 ms | this / baseline |"
echo "|---|---|---|---|---|---|---|---|---|---|"
if [[ " $STORES " == *" sqlite "* ]]; then
    paths_backend sqlite "--data $work/sqlite" "--data $work/sqlite-baseline"
fi
[[ " $STORES " == *" postgres "* ]] || exit 0
postgres_backend paths_backend
