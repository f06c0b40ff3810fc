#!/usr/bin/env bash
# The Gatehouse Gate step for GitHub Actions (action.yml runs this file).
#
# It asks Gatehouse whether the job may run an action, waits while a reviewer
# decides, writes the outputs `decision-id`, `status` and `approval-token`,
# and exits non-zero unless the action is allowed or approved.
#
# Inputs arrive as environment variables (INPUT_URL, INPUT_API_KEY, ...),
# never spliced into script text: action.yml maps each input to one variable,
# so a value such as `$(rm -rf /)` in a pull request title stays data.
#
# Exit codes are those of `gatehouse request`: 0 allow or approved; 1 reject,
# rejected or expired; 2 an error, or still pending when wait-timeout ran out.
# Nothing but 0 lets the job go on: the gate fails closed.
#
# Tools: bash, curl, jq, sha256sum (or shasum) and date, all on GitHub-hosted
# Linux and macOS runners.
set -euo pipefail

readonly EXIT_DENIED=1
readonly EXIT_ERROR=2
# The server answers a long-poll after at most 60 s; we ask again until
# wait-timeout has passed.
readonly MAX_POLL=60
# Attempts for one HTTP call that fails with a network error, 408, 429 or 5xx.
readonly SUBMIT_ATTEMPTS=4

url=${INPUT_URL:-}
api_key=${INPUT_API_KEY:-}
workflow=${INPUT_WORKFLOW:-}
task_label=${INPUT_TASK_LABEL:-}
tool=${INPUT_TOOL:-}
subject=${INPUT_SUBJECT:-}
risk=${INPUT_RISK:-}
payload=${INPUT_PAYLOAD:-}
summary=${INPUT_SUMMARY:-}
wait_timeout=${INPUT_WAIT_TIMEOUT:-}

# Before anything else can print it, tell the runner to hide the key in every
# log line. The runner swallows `::add-mask::` lines, so on a runner the key
# is never shown; outside one (GITHUB_ACTIONS unset) we print nothing, because
# a plain terminal would show the line as it is.
if [ "${GITHUB_ACTIONS:-}" = "true" ] && [ -n "$api_key" ]; then
    while IFS= read -r line; do
        [ -n "$line" ] && printf '::add-mask::%s\n' "$line"
    done <<<"$api_key"
fi

# One line of text that cannot start a workflow command: the runner reads
# `::command::` lines from stdout and stderr alike, and reasons, subjects and
# comments may hold newlines.
one_line() {
    printf '%s' "$1" | tr '\r\n' '  '
}

# Appends markdown to the job summary when the runner gave us one.
summary_md() {
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
        printf '%s\n' "$@" >>"$GITHUB_STEP_SUMMARY"
    fi
}

# Prints an error annotation (stdout, where the runner turns it into a red
# line in the run's page) and the full message on stderr, adds the message
# to the job summary, and exits with the given code.
fail() {
    local code=$1 title=$2
    shift 2
    local text annotation property
    text=$(printf '%s\n' "$@")
    # Workflow command values escape %, CR and LF; property values (the
    # title) also escape : and , which would otherwise end them.
    annotation=${text//'%'/'%25'}
    annotation=${annotation//$'\r'/'%0D'}
    annotation=${annotation//$'\n'/'%0A'}
    property=${title//'%'/'%25'}
    property=${property//':'/'%3A'}
    property=${property//','/'%2C'}
    printf '::error title=Gatehouse %s::%s\n' "$property" "$annotation"
    printf 'Gatehouse: %s\n' "$title" >&2
    printf '  %s\n' "$@" >&2
    summary_md "### Gatehouse gate: $title" ""
    local line
    for line in "$@"; do summary_md "- $line"; done
    summary_md ""
    exit "$code"
}

# ---------------------------------------------------------------------------
# Check every input before anything is sent, and report all problems at once.
problems=()
[ -n "$url" ] || problems+=("input 'url' is required (the Gatehouse address, e.g. https://gate.example.com)")
[ -n "$api_key" ] || problems+=("input 'api-key' is required (an agent key; keep it in a secret)")
[ -n "$tool" ] || problems+=("input 'tool' is required (the action about to run, e.g. deploy_production)")
[ -n "$subject" ] || problems+=("input 'subject' is required (what the action touches, e.g. 'Deploy main to production')")
[ -n "$risk" ] || problems+=("input 'risk' is required: low, medium or high")

url=${url%/}
if [ -n "$url" ] && ! [[ "$url" =~ ^https?://[^[:space:]]+$ ]]; then
    problems+=("input 'url' must start with http:// or https:// and hold no spaces; got '$(one_line "$url")'")
fi
if [ -n "$risk" ] && ! [[ "$risk" =~ ^(low|medium|high)$ ]]; then
    problems+=("input 'risk' must be low, medium or high; got '$(one_line "$risk")'")
fi

# wait-timeout: seconds, or a number with s, m or h. Empty means the default.
wait_seconds=600
if [ -n "$wait_timeout" ]; then
    if [[ "$wait_timeout" =~ ^([0-9]{1,6})(s|m|h)?$ ]]; then
        n=$((10#${BASH_REMATCH[1]}))
        case "${BASH_REMATCH[2]}" in
            m) wait_seconds=$((n * 60)) ;;
            h) wait_seconds=$((n * 3600)) ;;
            *) wait_seconds=$n ;;
        esac
    else
        problems+=("input 'wait-timeout' must be seconds (e.g. 600) or a number with s, m or h (e.g. 10m); got '$(one_line "$wait_timeout")'")
    fi
fi

# The payload is sent exactly as written (not re-serialized by jq, which
# would round large integers and drop repeated keys silently): it only has to
# be one JSON object. The server still refuses repeated keys, by name.
[ -n "${payload//[[:space:]]/}" ] || payload='{}'
if ! payload_check=$(jq -e -s 'length == 1 and (.[0] | type) == "object"' 2>&1 <<<"$payload"); then
    if [ "$payload_check" = "false" ]; then
        problems+=("input 'payload' must be one JSON object, like {\"sha\": \"abc123\"}; got another JSON value")
    else
        problems+=("input 'payload' is not valid JSON: $(one_line "${payload_check#jq: error (at <stdin>:*): }")")
    fi
fi

if [ -z "${GITHUB_RUN_ID:-}" ]; then
    problems+=("GITHUB_RUN_ID is not set: this action runs in a GitHub Actions job, whose run id is the Gatehouse task id")
fi

if [ ${#problems[@]} -gt 0 ]; then
    fail "$EXIT_ERROR" "invalid inputs, nothing was sent" "${problems[@]}"
fi

[ -n "$workflow" ] || workflow="GitHub Actions"
run_attempt=${GITHUB_RUN_ATTEMPT:-1}
if [ -z "$task_label" ]; then
    task_label="${GITHUB_WORKFLOW:-workflow} run ${GITHUB_RUN_NUMBER:-$GITHUB_RUN_ID} attempt $run_attempt"
    [ -n "${GITHUB_REPOSITORY:-}" ] && task_label="$GITHUB_REPOSITORY: $task_label"
    [ -n "${GITHUB_REF_NAME:-}" ] && task_label="$task_label on ${GITHUB_REF_NAME}"
    [ -n "${GITHUB_SHA:-}" ] && task_label="$task_label (${GITHUB_SHA:0:12})"
fi

# ---------------------------------------------------------------------------
# The request body. `summary` is one fact per non-empty line.
rest=$(jq -cn \
    --arg workflow "$workflow" --arg task_label "$task_label" --arg tool "$tool" \
    --arg subject "$subject" --arg risk "$risk" --arg summary "$summary" \
    '{workflow_name: $workflow, task_label: $task_label, tool_name: $tool,
      subject: $subject, risk_level: $risk}
     + ([$summary | split("\n")[] | sub("^\\s+"; "") | sub("\\s+$"; "") | select(. != "")]
        | if length > 0 then {summary: .} else {} end)')
body="{\"payload\":${payload},${rest#\{}"

# The Idempotency-Key makes a retried submit safe: the server answers the same
# key and body with the original decision instead of a second one. It names
# the run and its attempt (a "Re-run" is a new attempt, and asks again) and
# hashes the repository, the job and the body, so two different Gate steps in
# one job never collide while the same step retried within one attempt finds
# its first decision.
# macOS runners have shasum rather than sha256sum.
sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }
body_hash=$(printf '%s\n%s\n%s' "${GITHUB_REPOSITORY:-}" "${GITHUB_JOB:-}" "$body" | sha256 | cut -c1-40)
idempotency_key="gha-${GITHUB_RUN_ID}-${run_attempt}-${body_hash}"
idempotency_key=${idempotency_key//[^A-Za-z0-9._:-]/_}

task_id=$(jq -rn --arg v "$GITHUB_RUN_ID" '$v | @uri')

# Files: the key goes to curl in a header file (mode 0600), never on its
# command line, where any process on the machine could read it.
umask 077
work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/gatehouse-gate.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf 'Authorization: Bearer %s\n' "$api_key" >"$work/auth"
printf '%s' "$body" >"$work/body"

# http METHOD URL MAX_TIME [curl args...]: sets HTTP_CODE ("000" when no
# answer arrived), HTTP_ERROR (curl's message) and writes $work/resp and
# $work/headers.
http() {
    local method=$1 target=$2 max_time=$3
    shift 3
    HTTP_ERROR=""
    : >"$work/resp"
    : >"$work/headers"
    if ! HTTP_CODE=$(curl -sS -X "$method" "$target" \
        -o "$work/resp" -D "$work/headers" -w '%{http_code}' \
        --connect-timeout 10 --max-time "$max_time" \
        -H @"$work/auth" -H 'Accept: application/json' \
        -H 'User-Agent: gatehouse-github-action/1' \
        "$@" 2>"$work/curl-err"); then
        HTTP_CODE=000
        HTTP_ERROR=$(one_line "$(tail -n 1 "$work/curl-err")")
    fi
    [ -n "$HTTP_CODE" ] || HTTP_CODE=000
}

# True for the answers worth asking again: no answer, 408, 429, 5xx.
transient() {
    [[ "$HTTP_CODE" =~ ^(000|408|429|5[0-9][0-9])$ ]]
}

# Seconds to wait before attempt N+1: the server's Retry-After when given
# (capped at 30), else 1, 2, 4, ...
backoff() {
    local n=$1 after
    after=$(awk 'tolower($1) == "retry-after:" { gsub("\r", "", $2); print $2 }' "$work/headers" | tail -n 1)
    if [[ "$after" =~ ^[0-9]{1,4}$ ]]; then
        echo $((10#$after > 30 ? 30 : 10#$after))
    else
        echo $((1 << (n - 1)))
    fi
}

# What went wrong with the last call, for people.
describe_failure() {
    if [ "$HTTP_CODE" = "000" ]; then
        printf 'no answer from %s: %s' "$url" "${HTTP_ERROR:-connection failed}"
        return
    fi
    local detail
    detail=$(jq -r 'select(type == "object" and (.error | type) == "object") | .error
        | "\(.code): \(.message)" + (if .request_id then " (request id \(.request_id))" else "" end)' \
        "$work/resp" 2>/dev/null || true)
    [ -n "$detail" ] || detail=$(head -c 300 "$work/resp")
    printf 'HTTP %s %s' "$HTTP_CODE" "$(one_line "$detail")"
}

hint_for() {
    case "$HTTP_CODE" in
        401) echo "the api-key was refused: check the secret holds an active agent key" ;;
        403) echo "this key's role may not ask for decisions: use an agent key" ;;
        404) echo "nothing answers there: check the url input points at the Gatehouse server" ;;
        *) echo "" ;;
    esac
}

# ---------------------------------------------------------------------------
# Submit, retrying what may be retried: the Idempotency-Key makes a repeat
# return the first decision, so a lost answer never makes a second one.
submit_url="$url/api/agent/tasks/$task_id/requests"
echo "Gatehouse: asking for $(one_line "$tool") on $(one_line "$subject") (risk $risk) as task $GITHUB_RUN_ID"
attempt=1
while :; do
    http POST "$submit_url" 60 -H 'Content-Type: application/json' \
        -H "Idempotency-Key: $idempotency_key" --data-binary @"$work/body"
    if [[ "$HTTP_CODE" =~ ^20[01]$ ]]; then
        break
    fi
    if transient && [ "$attempt" -lt "$SUBMIT_ATTEMPTS" ]; then
        delay=$(backoff "$attempt")
        echo "Gatehouse: $(describe_failure); trying again in ${delay}s (attempt $((attempt + 1)) of $SUBMIT_ATTEMPTS)"
        sleep "$delay"
        attempt=$((attempt + 1))
        continue
    fi
    lines=("could not submit the request: $(describe_failure)")
    hint=$(hint_for)
    [ -n "$hint" ] && lines+=("$hint")
    transient && lines+=("gave up after $attempt attempts; nothing was approved")
    fail "$EXIT_ERROR" "error, the action may not run" "${lines[@]}"
done

if ! decision_id=$(jq -er '.id | strings' "$work/resp" 2>/dev/null); then
    fail "$EXIT_ERROR" "error, the action may not run" "the server's answer has no decision id: $(head -c 300 "$work/resp")"
fi
cp "$work/resp" "$work/decision"
console="$url/console/decisions/$(jq -rn --arg v "$decision_id" '$v | @uri')"
status=$(jq -r '.status // ""' "$work/decision")
if [ "$HTTP_CODE" = "200" ]; then
    echo "Gatehouse: decision $decision_id is $status (made by an earlier try of this step: same Idempotency-Key)"
else
    echo "Gatehouse: decision $decision_id is $status"
fi

# ---------------------------------------------------------------------------
# Wait while a reviewer decides: long-polls of at most 60 s each (the
# server's cap) until the decision leaves pending_review or wait-timeout ends.
# A failed poll is retried within the same budget; it never approves.
deadline=$(($(date +%s) + wait_seconds))
poll_url="$url/api/gate/requests/$(jq -rn --arg v "$decision_id" '$v | @uri')"
poll_failures=0
announced=""
while [ "$status" = "pending_review" ]; do
    remaining=$((deadline - $(date +%s)))
    [ "$remaining" -gt 0 ] || break
    if [ -z "$announced" ]; then
        echo "Gatehouse: waiting up to ${remaining}s for a reviewer: $console"
        announced=1
    fi
    wait_for=$((remaining < MAX_POLL ? remaining : MAX_POLL))
    http GET "$poll_url?wait=$wait_for" $((wait_for + 30))
    if [ "$HTTP_CODE" = "200" ] && jq -e '.id and .status' "$work/resp" >/dev/null 2>&1; then
        cp "$work/resp" "$work/decision"
        status=$(jq -r '.status' "$work/decision")
        poll_failures=0
        continue
    fi
    if ! transient; then
        lines=("could not read decision $decision_id: $(describe_failure)")
        hint=$(hint_for)
        [ -n "$hint" ] && lines+=("$hint")
        lines+=("Console: $console")
        poll_error=1
        break
    fi
    poll_failures=$((poll_failures + 1))
    last_poll_failure=$(describe_failure)
    delay=$(backoff $((poll_failures < 5 ? poll_failures : 5)))
    remaining=$((deadline - $(date +%s)))
    [ "$delay" -lt "$remaining" ] || delay=$((remaining > 0 ? remaining : 0))
    echo "Gatehouse: $(describe_failure); asking again in ${delay}s"
    sleep "$delay"
done

# ---------------------------------------------------------------------------
# Outputs, in the multi-line-safe form `name<<DELIMITER`, with a delimiter
# that cannot occur in the value.
set_output() {
    local name=$1 value=$2 delimiter
    if [ -z "${GITHUB_OUTPUT:-}" ]; then
        return
    fi
    delimiter="gatehouse_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    printf '%s<<%s\n%s\n%s\n' "$name" "$delimiter" "$value" "$delimiter" >>"$GITHUB_OUTPUT"
}

may_proceed=$(jq -r '.may_proceed == true' "$work/decision")
token=$(jq -r '.approval_token // ""' "$work/decision")
if [ -n "$token" ] && [ "${GITHUB_ACTIONS:-}" = "true" ]; then
    # The token lets its holder run the approved action once: keep it out of logs.
    printf '::add-mask::%s\n' "$token"
fi
set_output decision-id "$decision_id"
set_output status "$status"
if [ "$may_proceed" = "true" ] && [[ "$status" =~ ^(allow|approved)$ ]]; then
    set_output approval-token "$token"
else
    set_output approval-token ""
fi

if [ -n "${poll_error:-}" ]; then
    fail "$EXIT_ERROR" "error, the action may not run" "${lines[@]}"
fi

what="$(one_line "$tool") on $(one_line "$subject") (risk $risk)"
reasons=()
while IFS= read -r r; do reasons+=("$r"); done < <(jq -r '(.reasons // [])[] | gsub("[\r\n]"; " ")' "$work/decision")
comment=$(jq -r '.review.comment // "" | gsub("[\r\n]"; " ")' "$work/decision")
reviewer=$(jq -r '.review.reviewer_name // .review.reviewer // "" | gsub("[\r\n]"; " ")' "$work/decision")
detail=("Action: $what" "Decision: $decision_id ($status)")
for r in "${reasons[@]}"; do detail+=("Reason: $r"); done
[ -n "$comment" ] && detail+=("Reviewer${reviewer:+ $reviewer}: $comment")
detail+=("Console: $console")

case "$status" in
    allow | approved)
        if [ "$may_proceed" != "true" ]; then
            fail "$EXIT_ERROR" "error, the action may not run" \
                "decision $decision_id says $status but may_proceed is not true; refusing to go on" "${detail[@]}"
        fi
        if [ -z "$token" ]; then
            echo "::warning title=Gatehouse::decision $decision_id is $status but carries no approval token (is api-key an agent key?)"
        fi
        echo "Gatehouse: $status, the action may run ($console)"
        summary_md "### Gatehouse gate: $status" ""
        for line in "${detail[@]}"; do summary_md "- $line"; done
        summary_md ""
        exit 0
        ;;
    reject | rejected | expired)
        fail "$EXIT_DENIED" "$status, the action may not run" "${detail[@]}"
        ;;
    pending_review)
        detail+=("no reviewer decided within wait-timeout (${wait_seconds}s); a re-run asks again")
        [ "$poll_failures" -gt 0 ] && detail+=("the last attempt to read the decision failed: $last_poll_failure")
        fail "$EXIT_ERROR" "still pending, the action may not run" "${detail[@]}"
        ;;
    *)
        fail "$EXIT_ERROR" "error, the action may not run" \
            "decision $decision_id has an unknown status '$(one_line "$status")'" "${detail[@]}"
        ;;
esac
