#!/usr/bin/env bash
# Tests of the Gatehouse GitHub Action (action.yml + gate.sh), run the way a
# runner runs them, against a real `gatehouse serve` this script starts:
#
#   GATEHOUSE_BIN=/abs/path/to/gatehouse integrations/github-action/test.sh
#
# GATEHOUSE_BIN defaults to <repo>/target/debug/gatehouse. Needs bash, curl,
# jq and node (for the fault-injecting proxy in test/fault-proxy.mjs). Exits
# non-zero if any check fails, naming each failed check.
set -uo pipefail

ACTION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$ACTION_DIR/../.." && pwd)
ACTION_YML=$ACTION_DIR/action.yml
DOC=$REPO/docs/integrations/github-actions.md
BIN=${GATEHOUSE_BIN:-$REPO/target/debug/gatehouse}
GITHUB_SHA_FOR_TESTS=3f786850e387550fdab836ed7e6dc881de23001b
AMENDED_SHA=89e6c98d92887913cadf06b2adb97f26cde4849b

for tool in curl jq node; do
    command -v "$tool" >/dev/null 2>&1 || { echo "test.sh: $tool is required" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "test.sh: no gatehouse binary at $BIN (set GATEHOUSE_BIN)" >&2; exit 2; }

TMP=$(mktemp -d /tmp/gatehouse-action-test.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [ -n "${KEEP_TMP:-}" ]; then echo "# kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# shellcheck source=test/runner.sh
. "$ACTION_DIR/test/runner.sh"

# --- reporting -----------------------------------------------------------------
PASSED=0
FAILED=()
CURRENT=""
CURRENT_OK=1
LAST=""

finish_test() {
    [ -n "$CURRENT" ] || return 0
    if [ "$CURRENT_OK" = 1 ]; then
        PASSED=$((PASSED + 1))
        echo "ok - $CURRENT"
    else
        FAILED+=("$CURRENT")
        echo "not ok - $CURRENT"
    fi
    CURRENT=""
}
begin_test() {
    finish_test
    CURRENT=$1
    CURRENT_OK=1
}
# check DESCRIPTION COMMAND...: records a failure (with the last step's
# output) when COMMAND fails.
check() {
    local what=$1
    shift
    if ! "$@"; then
        CURRENT_OK=0
        echo "  FAILED: $what"
        if [ -n "$LAST" ] && [ -d "$LAST" ]; then
            echo "    rc=$(cat "$LAST/rc" 2>/dev/null) stdout:"
            sed 's/^/      | /' "$LAST/stdout" 2>/dev/null | tail -n 15
            echo "    stderr:"
            sed 's/^/      | /' "$LAST/stderr" 2>/dev/null | tail -n 15
        fi
    fi
}
eq() { [ "$1" = "$2" ] || { echo "    expected '$2', got '$1'"; return 1; }; }
has() { grep -qF -- "$2" "$1" || { echo "    '$2' not in $(basename "$1")"; return 1; }; }
lacks() { ! grep -qF -- "$2" "$1" || { echo "    '$2' unexpectedly in $(basename "$1")"; return 1; }; }
matches() { [[ $1 =~ $2 ]] || { echo "    '$1' does not match $2"; return 1; }; }
rc() { cat "$LAST/rc"; }
out() { cat "$LAST/out.$1" 2>/dev/null; }
has_output() { [ -f "$LAST/out.$1" ] || { echo "    no output $1"; return 1; }; }
JWT='^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'

# --- the server ------------------------------------------------------------------
# The starter policies plus one decide-tier forbid, so that one tool is
# rejected outright.
POLICIES=$TMP/policies
mkdir -p "$POLICIES"
cp "$REPO/examples/policies/starter/policies.cedar" "$REPO/examples/policies/starter/schema.cedarschema" "$POLICIES/"
cat >>"$POLICIES/policies.cedar" <<'EOF'

@id("never-drop-databases")
@reason("Dropping a database is never allowed from CI")
forbid(principal, action, resource)
when { context.tool == "drop_database" };
EOF

DATA=$TMP/data
AGENT_KEY=$("$BIN" keys create --role agent --name ci-deployer --data "$DATA" | tail -n 1)
REVIEWER_KEY=$("$BIN" keys create --role reviewer --name rita --data "$DATA" | tail -n 1)
[ -n "$AGENT_KEY" ] && [ -n "$REVIEWER_KEY" ] || { echo "test.sh: could not create keys" >&2; exit 2; }

# --max-wait 2s makes every long-poll end after 2 s, so the action's loop
# that resumes across the server's cap is exercised in seconds.
"$BIN" serve --listen 127.0.0.1:0 --data "$DATA" --policies "$POLICIES" \
    --max-wait 2s --rate-limit 0 >"$TMP/server.out" 2>"$TMP/server.err" &
PIDS+=($!)
URL=""
for _ in $(seq 1 300); do
    URL=$(sed -n 's/^gatehouse listening on \(http:[^ ]*\).*$/\1/p' "$TMP/server.out" | head -n 1)
    [ -n "$URL" ] && break
    kill -0 "${PIDS[0]}" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "test.sh: the server did not start:" >&2
    cat "$TMP/server.err" >&2
    exit 2
fi
echo "# gatehouse serve at $URL"

# start_proxy FAULTS: a fault-injecting proxy in front of the server; sets
# PROXY_URL and PROXY_LOG.
start_proxy() {
    PROXY_LOG=$(mktemp "$TMP/proxy.XXXXXX")
    node "$ACTION_DIR/test/fault-proxy.mjs" "$URL" "$1" >"$PROXY_LOG.out" 2>"$PROXY_LOG" &
    PIDS+=($!)
    PROXY_URL=""
    for _ in $(seq 1 100); do
        PROXY_URL=$(sed -n 's/^proxy listening on \(http:[^ ]*\)$/\1/p' "$PROXY_LOG.out" 2>/dev/null)
        [ -n "$PROXY_URL" ] && return 0
        sleep 0.1
    done
    echo "test.sh: the proxy did not start" >&2
    cat "$PROXY_LOG" >&2
    exit 2
}

api() {
    local key=$1 method=$2 path=$3
    shift 3
    curl -sS -X "$method" "$URL$path" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' "$@"
}
# How many decisions the server holds for a task (a run id).
decisions_for_task() {
    api "$REVIEWER_KEY" GET "/api/decisions?task_id=$1&limit=500" | jq '.items | length'
}
# Waits (up to 15 s) for the task's pending decision and prints its id.
pending_decision() {
    local id
    for _ in $(seq 1 150); do
        id=$(api "$REVIEWER_KEY" GET "/api/decisions?task_id=$1&status=pending_review" | jq -r '.items[0].id // empty')
        [ -n "$id" ] && { echo "$id"; return 0; }
        sleep 0.1
    done
    return 1
}
review() {
    local id=$1 body=$2
    api "$REVIEWER_KEY" POST "/api/gate/requests/$id/review" -d "$body" -o "$TMP/review.json" -w '%{http_code}'
}
# Starts run_action in the background; wait_background waits for it.
background_action() {
    run_action "$1" &
    BG=$!
}
wait_background() { wait "$BG"; LAST=$TMP/runs/$1; }

base_inputs() {
    unset IN
    declare -gA IN=([url]="$URL" [api-key]="$AGENT_KEY")
}

# ===========================================================================
begin_test "action.yml declares exactly the documented inputs, outputs and wiring"
check "inputs" eq "$(yaml_section_keys inputs | sort | tr '\n' ' ')" \
    "$(printf '%s\n' url api-key workflow task-label tool subject risk payload summary wait-timeout | sort | tr '\n' ' ')"
check "outputs" eq "$(yaml_section_keys outputs | sort | tr '\n' ' ')" "approval-token decision-id status "
for o in decision-id status approval-token; do
    check "output $o comes from the gate step" eq "$(yaml_section_field outputs "$o" value)" "\${{ steps.gate.outputs.$o }}"
done
check "composite" grep -qE '^  using: composite$' "$ACTION_YML"
check "one step, id gate, shell bash" eq "$(grep -cE '^    - ' "$ACTION_YML"):$(grep -cE '^    - id: gate$' "$ACTION_YML"):$(grep -cE '^      shell: bash$' "$ACTION_YML")" "1:1:1"
mapped=$(action_env_map | awk '{print $2}' | sort | tr '\n' ' ')
check "every input is mapped to one environment variable, and only inputs" eq "$mapped" \
    "$(yaml_section_keys inputs | sort | tr '\n' ' ')"
check "the env mapping holds nothing but inputs" eq "$(action_env_map | grep -c ' !')" "0"
check "the run line expands no expression (no script injection)" lacks <(action_run_line) '${{'
check "the only expressions under runs: are env values" eq \
    "$(awk '/^runs:/{r=1} r && /\$\{\{/ && !/^        INPUT_[A-Z_]+: \$\{\{ inputs\.[a-z-]+ \}\}$/' "$ACTION_YML" | wc -l | tr -d ' ')" "0"
check "gate.sh holds no expression" lacks "$ACTION_DIR/gate.sh" '${{'
for name in url api-key workflow task-label tool subject risk payload summary wait-timeout decision-id status approval-token; do
    check "the doc's tables list $name" grep -qF "| \`$name\` |" "$DOC"
done

# ===========================================================================
begin_test "allow passes and sets decision-id, status and approval-token"
RUN_ID=1001 RUN_ATTEMPT=1
new_job
base_inputs
IN[tool]=run_tests IN[subject]=main IN[risk]=low
IN[payload]='{"sha": "abc123", "big": 12345678901234567890, "nested": {"a": [1, 2.5, "x"]}}'
IN[summary]=$'  Unit tests for main  \n\nCommit abc123\n'
run_action allow
check "exit 0" eq "$(rc)" 0
check "status output" eq "$(out status)" allow
check "decision-id output" matches "$(out decision-id)" '^dec_'
check "approval-token output is a JWT" matches "$(out approval-token)" "$JWT"
check "the key is masked first" eq "$(head -n 1 "$LAST/stdout")" "::add-mask::$AGENT_KEY"
check "the token is masked" has "$LAST/stdout" "::add-mask::$(out approval-token)"
check "job summary" has "$JOB_DIR/summary" "Gatehouse gate: allow"
check "no temporary files left in RUNNER_TEMP" eq "$(ls -A "$JOB_TEMP")" ""
api "$AGENT_KEY" GET "/api/gate/requests/$(out decision-id)" >"$TMP/allow.json"
check "task_id is the run id" eq "$(jq -r .task_id "$TMP/allow.json")" 1001
check "defaults: workflow" eq "$(jq -r .workflow_name "$TMP/allow.json")" "GitHub Actions"
check "defaults: task label names repo, run and attempt" eq "$(jq -r .task_label "$TMP/allow.json")" \
    "acme/shop: Deploy with Gatehouse approval run 7 attempt 1 on main (3f786850e387)"
check "summary: one fact per non-empty line, trimmed" eq "$(jq -c .summary "$TMP/allow.json")" '["Unit tests for main","Commit abc123"]'
# The payload text goes to the server as written: jq 1.6 would round the
# 20-digit integer, and the token would then bind another number.
check "the payload's big integer arrived exactly" grep -qF '"big":12345678901234567890' "$TMP/allow.json"
redeem_code=$(printf '{"token": "%s", "action": {"tool_name": "run_tests", "subject": "main", "payload": %s}}' \
    "$(out approval-token)" "${IN[payload]}" |
    api "$AGENT_KEY" POST /api/tokens/redeem --data-binary @- -o "$TMP/redeem.json" -w '%{http_code}')
check "the token redeems for the action as submitted" eq "$redeem_code" 200

# ===========================================================================
begin_test "reject fails with the reasons and the console link"
RUN_ID=1002
new_job
base_inputs
IN[tool]=drop_database IN[subject]=prod-db IN[risk]=low
run_action reject
id=$(out decision-id)
check "exit 1" eq "$(rc)" 1
check "status output" eq "$(out status)" reject
check "decision-id output" matches "$id" '^dec_'
check "empty approval-token output" eq "$(has_output approval-token && out approval-token)" ""
check "reason on stderr" has "$LAST/stderr" "Dropping a database is never allowed from CI"
check "console link on stderr" has "$LAST/stderr" "$URL/console/decisions/$id"
check "error annotation" has "$LAST/stdout" "::error title=Gatehouse reject%2C the action may not run::"
check "reason in the job summary" has "$JOB_DIR/summary" "Dropping a database is never allowed from CI"
check "console link in the job summary" has "$JOB_DIR/summary" "$URL/console/decisions/$id"

# ===========================================================================
begin_test "pending, then approved by a reviewer while the action waits, passes with a token"
RUN_ID=1003
new_job
start_proxy ""
base_inputs
IN[url]=$PROXY_URL IN[tool]=deploy_production IN[subject]="Deploy main to production" IN[risk]=high
IN[wait-timeout]=60
background_action approved
id=$(pending_decision 1003) || id=""
check "the request is pending" matches "$id" '^dec_'
sleep 5 # several capped long-polls (2 s each) pass before the reviewer acts
check "the reviewer approves" eq "$(review "$id" '{"decision": "approve", "comment": "window open"}')" 200
wait_background approved
check "exit 0" eq "$(rc)" 0
check "status output" eq "$(out status)" approved
check "decision-id output" eq "$(out decision-id)" "$id"
check "approval-token output is a JWT" matches "$(out approval-token)" "$JWT"
check "it said it was waiting, with the console link" has "$LAST/stdout" "for a reviewer: $PROXY_URL/console/decisions/$id"
check "it long-polled again across the server's cap" test "$(grep -c '^GET /api/gate/requests/.*wait=' "$PROXY_LOG")" -ge 2
check "each long-poll asked for at most 60 s" lacks "$PROXY_LOG" "wait=61"
check "job summary" has "$JOB_DIR/summary" "Gatehouse gate: approved"
# The next step of a deploy job reads the decision again for approved_action.
code=$(api "$AGENT_KEY" GET "/api/gate/requests/$id" -o "$TMP/approved-again.json" -w '%{http_code}')
check "the agent can read the approved decision again (HTTP $code: $(jq -r '.error.message // empty' "$TMP/approved-again.json" 2>/dev/null))" \
    eq "$code $(jq -r .approved_action.tool_name "$TMP/approved-again.json" 2>/dev/null)" "200 deploy_production"

# ===========================================================================
begin_test "still pending when wait-timeout runs out fails"
RUN_ID=1004
new_job
base_inputs
IN[tool]=send_invoices IN[subject]=all-customers IN[risk]=medium IN[wait-timeout]=5s
run_action timeout
id=$(out decision-id)
check "exit 2" eq "$(rc)" 2
check "status output is pending_review" eq "$(out status)" pending_review
check "decision-id output" matches "$id" '^dec_'
check "empty approval-token output" eq "$(has_output approval-token && out approval-token)" ""
check "it waited about wait-timeout" test "$(cat "$LAST/elapsed")" -ge 5 -a "$(cat "$LAST/elapsed")" -le 15
check "says still pending" has "$LAST/stderr" "still pending"
check "console link" has "$LAST/stderr" "$URL/console/decisions/$id"
check "the decision is still pending on the server" eq \
    "$(api "$REVIEWER_KEY" GET "/api/gate/requests/$id" | jq -r .status)" pending_review

# ===========================================================================
begin_test "wait-timeout 0 does not wait"
RUN_ID=1015
new_job
base_inputs
IN[tool]=send_invoices IN[subject]=all-customers IN[risk]=medium IN[wait-timeout]=0
run_action nowait
check "exit 2" eq "$(rc)" 2
check "status pending_review" eq "$(out status)" pending_review
check "returned at once" test "$(cat "$LAST/elapsed")" -le 2

# ===========================================================================
begin_test "rejected by a reviewer while waiting fails with the comment"
RUN_ID=1005
new_job
base_inputs
IN[tool]=deploy_production IN[subject]="Deploy main to production" IN[risk]=high IN[wait-timeout]=60
background_action rejected
id=$(pending_decision 1005) || id=""
check "the reviewer rejects" eq "$(review "$id" '{"decision": "reject", "comment": "not during the freeze"}')" 200
wait_background rejected
check "exit 1" eq "$(rc)" 1
check "status output" eq "$(out status)" rejected
check "empty approval-token output" eq "$(has_output approval-token && out approval-token)" ""
check "the reviewer's comment on stderr" has "$LAST/stderr" "not during the freeze"
check "console link" has "$LAST/stderr" "$URL/console/decisions/$id"

# ===========================================================================
begin_test "an invalid payload fails before anything is sent"
RUN_ID=1006
start_proxy ""
n=0
for payload in '{"sha": ' '["not", "an", "object"]' '{"a": 1} {"b": 2}' 'null'; do
    n=$((n + 1))
    new_job
    base_inputs
    IN[url]=$PROXY_URL IN[tool]=run_tests IN[subject]=main IN[risk]=low IN[payload]=$payload
    run_action "payload-$n"
    check "exit 2 for $payload" eq "$(rc)" 2
    check "names the payload for $payload" has "$LAST/stderr" "input 'payload'"
    check "says nothing was sent for $payload" has "$LAST/stderr" "nothing was sent"
    check "no outputs for $payload" eq "$(cat "$LAST/output")" ""
done
check "invalid JSON is called so" has "$TMP/runs/payload-1/stderr" "is not valid JSON"
check "the proxy saw no request" eq "$(wc -l <"$PROXY_LOG" | tr -d ' ')" 0
check "no decision was created" eq "$(decisions_for_task 1006)" 0

# ===========================================================================
begin_test "missing or malformed inputs fail, each named, before anything is sent"
RUN_ID=1007
new_job
unset IN
declare -A IN=([tool]="" [subject]="" [risk]=extreme [wait-timeout]=soon)
run_action missing
check "exit 2" eq "$(rc)" 2
for what in "'url' is required" "'api-key' is required" "'tool' is required" "'subject' is required" \
    "'risk' must be low, medium or high" "'wait-timeout' must be seconds"; do
    check "names $what" has "$LAST/stderr" "$what"
done
check "job summary lists the problems" has "$JOB_DIR/summary" "'tool' is required"
new_job
base_inputs
IN[url]="gate.example.com" IN[tool]=t IN[subject]=s IN[risk]=low
run_action bad-url
check "a url without a scheme is refused" has "$LAST/stderr" "input 'url' must start with http:// or https://"
check "no decision was created" eq "$(decisions_for_task 1007)" 0

# ===========================================================================
begin_test "a wrong api key fails, is not retried, and creates nothing"
RUN_ID=1008
new_job
base_inputs
IN[api-key]=gh_not_a_real_key IN[tool]=run_tests IN[subject]=main IN[risk]=low
run_action wrong-key
check "exit 2" eq "$(rc)" 2
check "401 unauthorized on stderr" has "$LAST/stderr" "HTTP 401 unauthorized"
check "a hint about the key" has "$LAST/stderr" "the api-key was refused"
check "not retried" lacks "$LAST/stdout" "trying again"
check "no outputs" eq "$(cat "$LAST/output")" ""
new_job
base_inputs
IN[api-key]=$REVIEWER_KEY IN[tool]=run_tests IN[subject]=main IN[risk]=low
run_action reviewer-key
check "a reviewer key is refused (403)" has "$LAST/stderr" "HTTP 403 forbidden"
check "exit 2 for the reviewer key" eq "$(rc)" 2
check "no decision was created" eq "$(decisions_for_task 1008)" 0

# ===========================================================================
begin_test "a lost answer, a 503 and a 429 on submit are retried into one decision"
RUN_ID=1009
new_job
start_proxy "POST:drop,POST:503,POST:429"
base_inputs
IN[url]=$PROXY_URL IN[tool]=run_tests IN[subject]=main IN[risk]=low
run_action retried
check "exit 0" eq "$(rc)" 0
check "status allow" eq "$(out status)" allow
check "retried three times" eq "$(grep -c 'trying again' "$LAST/stdout")" 3
check "the proxy dropped the server's first answer" has "$PROXY_LOG" "dropped the 201 answer"
check "the last try got the first decision back" has "$LAST/stdout" "made by an earlier try"
check "exactly one decision exists" eq "$(decisions_for_task 1009)" 1

# ===========================================================================
begin_test "submit errors that persist fail closed after 4 attempts"
RUN_ID=1010
new_job
start_proxy "POST:503,POST:503,POST:503,POST:503"
base_inputs
IN[url]=$PROXY_URL IN[tool]=run_tests IN[subject]=main IN[risk]=low
run_action unavailable
check "exit 2" eq "$(rc)" 2
check "gave up after 4 attempts" has "$LAST/stderr" "gave up after 4 attempts"
check "names the error" has "$LAST/stderr" "HTTP 503 unavailable"
check "4 attempts reached the proxy" eq "$(grep -c '^POST' "$PROXY_LOG")" 4
check "no outputs" eq "$(cat "$LAST/output")" ""
new_job
base_inputs
IN[url]=http://127.0.0.1:1 IN[tool]=run_tests IN[subject]=main IN[risk]=low
run_action unreachable
check "unreachable server: exit 2" eq "$(rc)" 2
check "unreachable server: says no answer" has "$LAST/stderr" "no answer from http://127.0.0.1:1"

# ===========================================================================
begin_test "the same attempt reuses its decision; a re-run (new attempt) asks again"
RUN_ID=1011 RUN_ATTEMPT=1
new_job
base_inputs
IN[tool]=run_tests IN[subject]=main IN[risk]=low IN[payload]='{"sha": "abc123"}'
run_action attempt1-a
first=$(out decision-id)
run_action attempt1-b
check "same decision for the same attempt" eq "$(out decision-id)" "$first"
check "says it is the earlier decision" has "$LAST/stdout" "made by an earlier try"
RUN_ATTEMPT=2
run_action attempt2
check "a new attempt gets a new decision" test "$(out decision-id)" != "$first"
check "the new attempt passes" eq "$(rc)" 0
IN[tool]=run_linters
RUN_ATTEMPT=1
run_action attempt1-other-step
check "another Gate step in the same attempt is its own decision" test "$(out decision-id)" != "$first"
check "three decisions exist for the run" eq "$(decisions_for_task 1011)" 3
RUN_ATTEMPT=1

# ===========================================================================
begin_test "inputs holding shell syntax or workflow commands stay data"
RUN_ID=1012
new_job
base_inputs
evil="\$(touch ../p1) \`touch ../p2\` \"; touch ../p3; \" '; touch ../p4; '"
IN[tool]=run_tests IN[subject]=$evil IN[risk]=low IN[summary]=$evil IN[task-label]=$evil
run_action injection
check "exit 0" eq "$(rc)" 0
check "nothing was executed" eq "$(ls "$JOB_DIR" "$WORKSPACE" | grep -c '^p[1-4]$')" 0
check "the subject arrived verbatim" eq \
    "$(api "$AGENT_KEY" GET "/api/gate/requests/$(out decision-id)" | jq -r .subject)" "$evil"
new_job
base_inputs
IN[tool]=run_tests IN[subject]=$'main\n::error::injected\n::add-mask::main' IN[risk]=low
run_action command-injection
check "refused (the server allows no control characters)" eq "$(rc)" 2
check "no injected workflow command on stdout or stderr" eq \
    "$(cat "$LAST/stdout" "$LAST/stderr" | grep -cE '^::(error::injected|add-mask::main)')" 0
check "only the action's own workflow commands" eq \
    "$(grep -hE '^::' "$LAST/stdout" "$LAST/stderr" | grep -vcE '^::(add-mask|error title=Gatehouse [^:]*|warning title=Gatehouse)::')" 0
check "no decision from the bad subject" eq "$(decisions_for_task 1012)" 1

# ===========================================================================
# shellcheck source=test/doc-workflow.sh
. "$ACTION_DIR/test/doc-workflow.sh"

# ===========================================================================
begin_test "the api key never appears in any log, output or summary"
LAST=""
# Everything a runner would show or keep: each step's stdout, stderr and
# $GITHUB_OUTPUT, and each job's summary. (RUNNER_TEMP is left out: the doc's
# steps keep the key there in a 0600 header file, as intended.)
leaks=$(for f in "$TMP"/runs/*/stdout "$TMP"/runs/*/stderr "$TMP"/runs/*/output "$TMP"/job.*/summary; do
    [ -f "$f" ] && grep -qF -- "$AGENT_KEY" "$f" && echo "$f"
done | while read -r f; do
    grep -F -- "$AGENT_KEY" "$f" | grep -vqxF "::add-mask::$AGENT_KEY" && echo "$f"
done)
check "no leak (files: ${leaks:-none})" eq "$leaks" ""
check "the scan covered the action's runs" test "$(ls "$TMP/runs" | wc -l)" -ge 20

finish_test
echo
echo "# $PASSED passed, ${#FAILED[@]} failed"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf '# failed: %s\n' "${FAILED[@]}"
    exit 1
fi
