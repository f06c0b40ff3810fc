# Shared by bench/run.sh and bench/paths.sh: the builds (this one and,
# with GATEHOUSE_BENCH_BASELINE, a baseline revision), wrk runs, medians and
# server start-up. Expects DURATION to be set; sets BIN, BASE_BIN and work.
BIN=target/release/gatehouse
BASELINE="${GATEHOUSE_BENCH_BASELINE:-}"
BASE_BIN=""
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p gatehouse
if [ -n "${GATEHOUSE_BENCH_BASELINE_BIN:-}" ]; then
    # A binary already built (e.g. a copy of this build, to measure what
    # GATEHOUSE_BENCH_CONFIG costs without building anything else).
    BASE_BIN=$GATEHOUSE_BENCH_BASELINE_BIN
    BASELINE="${BASELINE:-$("$BASE_BIN" --version)}"
elif [ -n "$BASELINE" ]; then
    base_src=target/bench-baseline/src
    if [ ! -d "$base_src" ]; then
        git worktree add --detach -f "$base_src" "$BASELINE" >/dev/null
    fi
    git -C "$base_src" checkout -q --detach "$BASELINE"
    echo "building baseline $BASELINE (once; target/bench-baseline)" >&2
    (cd "$base_src" && CARGO_TARGET_DIR="$PWD/../target" cargo build --release -q -p gatehouse)
    BASE_BIN=target/bench-baseline/target/release/gatehouse
fi

work=$(mktemp -d)
# GATEHOUSE_BENCH_KEEP=1 keeps the servers' output (and the rest of the
# run's files) in $work, printed at the end, to look into a run.
if [ -n "${GATEHOUSE_BENCH_KEEP:-}" ]; then
    trap 'kill $(jobs -p) 2>/dev/null || true; echo "kept $work" >&2' EXIT
else
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
fi

# GATEHOUSE_BENCH_WEBHOOKS=1: this build's server gets a configuration
# file with one webhook on every pending decision, delivered to a cheap
# receiver (crates/gatehouse-notify/examples/webhook_sink.rs) standing in
# for one on another machine; with GATEHOUSE_BENCH_BASELINE_BIN set to a
# copy of this build, the ratio is what delivering costs decide.
SINK_URL=""
if [ -n "${GATEHOUSE_BENCH_WEBHOOKS:-}" ]; then
    cargo build --release -q -p gatehouse-notify --example webhook_sink
    target/release/examples/webhook_sink 127.0.0.1:0 > "$work/sink.out" &
    for _ in $(seq 100); do
        SINK_URL=$(sed -n 's/^webhook sink listening on //p' "$work/sink.out")
        [ -n "$SINK_URL" ] && break
        sleep 0.1
    done
    [ -n "$SINK_URL" ] || { echo "the webhook sink did not start" >&2; exit 1; }
    cat > "$work/webhooks.toml" <<EOF
[[webhooks]]
url = "$SINK_URL/bench"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
events = ["decision.pending_review"]
EOF
    GATEHOUSE_BENCH_CONFIG=$work/webhooks.toml
fi

# With the webhook sink: how many deliveries a backend's runs caused
# arrived, and how long after its last run the last of them arrived
# (the count no longer growing for 10 s). Prints one table row.
deliveries_report() { # name count-before
    [ -n "$SINK_URL" ] || return 0
    local at_end last stable=0 start now drained
    at_end=$(curl -sf "$SINK_URL/count")
    last=$at_end
    start=$(date +%s.%N)
    drained=$start
    while [ "$stable" -lt 100 ]; do
        sleep 0.1
        now=$(curl -sf "$SINK_URL/count")
        if [ "$now" != "$last" ]; then
            last=$now; stable=0; drained=$(date +%s.%N)
        else
            stable=$((stable + 1))
        fi
    done
    printf "| %s | webhook deliveries: %d, of which %d arrived after the last run, the last %.1f s after it | | | | | | | |\n" \
        "$1" $((last - $2)) $((last - at_end)) "$(awk -v a="$drained" -v b="$start" 'BEGIN { print a - b }')"
}

# Runs wrk once and prints "requests/s p50 p99" (latencies in ms).
measure_once() { # script url connections
    local threads=${WRK_THREADS:-$(( $3 < 2 ? 1 : 2 ))}
    wrk -t"$threads" -c"$3" -d"${DURATION}s" --latency -s "bench/$1" "$2" > "$work/wrk.out"
    local errors
    errors=$(grep -E "Non-2xx|Socket errors" "$work/wrk.out" || true)
    [ -z "$errors" ] || { echo "wrk reported errors: $errors" >&2; cat "$work/wrk.out" >&2; exit 1; }
    awk '
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
      /Requests\/sec/ { rps = $2 }
      $1 == "50%" { p50 = ms($2) }
      $1 == "99%" { p99 = ms($2) }
      END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }' "$work/wrk.out"
}

# Column-wise median of a file of "rps p50 p99" lines.
median() {
    for col in 1 2 3; do
        sort -g -k"$col","$col" "$1" | awk -v c="$col" '{ v[NR] = $c } END { printf "%s ", v[int((NR + 1) / 2)] }'
    done
    echo
}

# Starts a server; prints "pid url key".
start_server() { # binary tag storage-args...
    local bin=$1 tag=$2
    shift 2
    local key
    key=$("$bin" keys create --role agent --name bench "$@" | tail -n 1)
    # GATEHOUSE_BENCH_CONFIG: a configuration file (e.g. with webhooks) for
    # this build's server only, so a baseline of the same revision measures
    # what the file costs.
    local -a config=()
    if [ "$tag" = current ] && [ -n "${GATEHOUSE_BENCH_CONFIG:-}" ]; then
        config=(--config "$GATEHOUSE_BENCH_CONFIG")
    fi
    "$bin" serve --listen 127.0.0.1:0 --rate-limit 0 "${config[@]}" "$@" > "$work/$tag.out" 2> "$work/$tag.err" &
    local pid=$! url=""
    for _ in $(seq 100); do
        url=$(sed -n 's/^gatehouse listening on //p' "$work/$tag.out")
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$work/$tag.err" >&2; exit 1; }
    echo "$pid $url $key"
}


# Runs "$1 postgres STORAGE BASELINE_STORAGE" on two fresh schemas of the
# database at $PG_URL (one per build), sharing one log key and token key.
postgres_backend() { # function
    schema="gh_bench_$$"
    base_schema="gh_bench_base_$$"
    for s in "$schema" "$base_schema"; do
        psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $s CASCADE; CREATE SCHEMA $s" >/dev/null 2>&1
    done
    sep='?'; [[ "$PG_URL" == *\?* ]] && sep='&'
    "$BIN" log keygen > "$work/log.key" 2>/dev/null
    "$BIN" log keygen --token > "$work/token.pem" 2>/dev/null
    keys="--log-key-file $work/log.key --token-key-file $work/token.pem"
    # A baseline from before the log (e1c1eaf) takes no key files.
    base_keys=""
    if [ -n "$BASE_BIN" ] && "$BASE_BIN" serve --help | grep -q -- --log-key-file; then
        base_keys=$keys
    fi
    "$1" postgres \
        "--database-url ${PG_URL}${sep}options=-c%20search_path%3D${schema} $keys" \
        "--database-url ${PG_URL}${sep}options=-c%20search_path%3D${base_schema} $base_keys"
    for s in "$schema" "$base_schema"; do
        psql "$PG_URL" -qc "DROP SCHEMA $s CASCADE" >/dev/null 2>&1
    done
}
