# Sourced by test.sh (after the action's own tests): runs the workflow that
# docs/integrations/github-actions.md documents, step by step, as a runner
# would, against the same server. Uses test.sh's helpers and variables.

# ===========================================================================
# The documented workflow, run from the doc: the Gate step's with:, then the
# redeem, deploy and report steps' env: and run:, with the runner's
# expressions filled in.
STEPS=$TMP/doc-steps
doc_steps "$STEPS" || echo "test.sh: could not read the workflow from $DOC"
declare -A EXPR_VALUES=(
    [vars.GATEHOUSE_URL]=$URL
    [secrets.GATEHOUSE_API_KEY]=$AGENT_KEY
    [github.sha]=$GITHUB_SHA_FOR_TESTS
    [github.actor]=octocat
)

# run_doc_gate NAME: the doc's Gate step through the action.
run_doc_gate() {
    local step f value
    step=$(doc_step "$STEPS" gate) || { echo "no step with id gate in the doc"; return 1; }
    unset IN
    declare -gA IN=()
    for f in "$step"/with/*; do
        value=$(resolve_expressions "$(cat "$f"; printf x)") || return 1
        value=${value%x}
        IN[$(basename "$f")]=${value%x}
    done
    background_action "$1"
}

# run_doc_job NAME DECISION_EXPECTATIONS...: redeem, deploy, report.
run_doc_rest() {
    local name=$1
    EXPR_VALUES[steps.gate.outputs.decision-id]=$(cat "$TMP/runs/$name-gate/out.decision-id")
    EXPR_VALUES[steps.gate.outputs.approval-token]=$(cat "$TMP/runs/$name-gate/out.approval-token")
    EXPR_VALUES[steps.gate.outputs.status]=$(cat "$TMP/runs/$name-gate/out.status")
    run_doc_step "$name-redeem" "$(doc_step "$STEPS" redeem)"
    EXPR_VALUES[steps.redeem.outputs.jti]=$(cat "$LAST/out.jti" 2>/dev/null)
    EXPR_VALUES[steps.redeem.outcome]=$([ "$(rc)" = 0 ] && echo success || echo failure)
    run_doc_step "$name-deploy" "$(doc_step "$STEPS" deploy)"
    EXPR_VALUES[steps.deploy.outcome]=$([ "$(rc)" = 0 ] && echo success || echo failure)
    # The report step's condition: always() && steps.redeem.outcome == 'success'.
    run_doc_step "$name-report" "$(doc_step "$STEPS" report)"
}

begin_test "the documented workflow: approve with changes, redeem, deploy what was approved, report"
RUN_ID=1013
new_job
cat >"$WORKSPACE/deploy.sh" <<'EOF'
#!/usr/bin/env bash
echo "$1" >deployed-sha
[ ! -e fail-deploy ]
EOF
chmod +x "$WORKSPACE/deploy.sh"
check "the doc's workflow has the steps gate, redeem, deploy, report" \
    test -n "$(doc_step "$STEPS" gate)" -a -n "$(doc_step "$STEPS" redeem)" -a -n "$(doc_step "$STEPS" deploy)" -a -n "$(doc_step "$STEPS" report)"
check "the gate step uses this action" matches "$(cat "$(doc_step "$STEPS" gate)/uses")" '/integrations/github-action@'
check "the report step runs when the redeem step succeeded" eq \
    "$(cat "$(doc_step "$STEPS" report)/if")" "always() && steps.redeem.outcome == 'success'"
run_doc_gate doc-gate
id=$(pending_decision 1013) || id=""
check "the deploy is pending review" matches "$id" '^dec_'
amended=$(jq -cn --arg sha "$AMENDED_SHA" '{sha: $sha, environment: "production"}')
check "the reviewer approves with changes" eq \
    "$(review "$id" "{\"decision\": \"approve\", \"amended_payload\": $amended, \"comment\": \"deploy the hotfix instead\"}")" 200
wait_background doc-gate
check "gate: exit 0" eq "$(rc)" 0
check "gate: approved" eq "$(out status)" approved
sent=$(api "$REVIEWER_KEY" GET "/api/gate/requests/$id")
check "gate: the doc's payload was sent" eq "$(jq -c .payload <<<"$sent")" \
    "{\"sha\":\"$GITHUB_SHA_FOR_TESTS\",\"environment\":\"production\"}"
check "gate: the doc's summary was sent" eq "$(jq -c .summary <<<"$sent")" \
    "[\"Requested by octocat\",\"Commit $GITHUB_SHA_FOR_TESTS\"]"
orig_code=$(jq -n --arg t "$(out approval-token)" --arg sha "$GITHUB_SHA_FOR_TESTS" \
    '{token: $t, action: {tool_name: "deploy_production", subject: "Deploy main to production", payload: {sha: $sha, environment: "production"}}}' |
    api "$AGENT_KEY" POST /api/tokens/redeem --data-binary @- -o "$TMP/orig-redeem.json" -w '%{http_code}')
check "the token does not redeem for the original payload (400 token_rejected)" eq \
    "$orig_code $(jq -r .error.code "$TMP/orig-redeem.json")" "400 token_rejected"
run_doc_rest doc
LAST=$TMP/runs/doc-redeem
check "redeem: exit 0" eq "$(cat "$TMP/runs/doc-redeem/rc")" 0
check "redeem: jti output" test -n "${EXPR_VALUES[steps.redeem.outputs.jti]}"
LAST=$TMP/runs/doc-deploy
check "deploy: exit 0" eq "$(cat "$TMP/runs/doc-deploy/rc")" 0
check "deploy: deployed the amended commit" eq "$(cat "$WORKSPACE/deployed-sha" 2>/dev/null)" "$AMENDED_SHA"
LAST=$TMP/runs/doc-report
check "report: exit 0" eq "$(cat "$TMP/runs/doc-report/rc")" 0
api "$REVIEWER_KEY" GET "/api/decision/$id/executions" >"$TMP/executions.json"
check "one execution receipt, bound to the redeemed token" eq \
    "$(jq -r '[(.executions | length), .executions[0].receipt.token_jti] | join(" ")' "$TMP/executions.json")" \
    "1 ${EXPR_VALUES[steps.redeem.outputs.jti]}"
check "one outcome: succeeded" eq "$(jq -r '[(.outcomes | length), .outcomes[0].outcome.status] | join(" ")' "$TMP/executions.json")" "1 succeeded"
run_doc_step doc-redeem-again "$(doc_step "$STEPS" redeem)"
check "the token cannot be redeemed twice" test "$(rc)" != 0
check "the second redemption says why" has "$LAST/stdout" "token_already_redeemed"

begin_test "the documented workflow: a failed deploy is reported as failed"
RUN_ID=1014
new_job
cat >"$WORKSPACE/deploy.sh" <<'EOF'
#!/usr/bin/env bash
echo "$1" >deployed-sha
[ ! -e fail-deploy ]
EOF
chmod +x "$WORKSPACE/deploy.sh"
touch "$WORKSPACE/fail-deploy"
run_doc_gate doc2-gate
id=$(pending_decision 1014) || id=""
check "the reviewer approves" eq "$(review "$id" '{"decision": "approve"}')" 200
wait_background doc2-gate
check "gate: exit 0" eq "$(rc)" 0
run_doc_rest doc2
LAST=$TMP/runs/doc2-redeem
check "redeem: exit 0" eq "$(cat "$TMP/runs/doc2-redeem/rc")" 0
LAST=$TMP/runs/doc2-deploy
check "deploy: failed" test "$(cat "$TMP/runs/doc2-deploy/rc")" != 0
check "deploy: got the proposed commit" eq "$(cat "$WORKSPACE/deployed-sha" 2>/dev/null)" "$GITHUB_SHA_FOR_TESTS"
LAST=$TMP/runs/doc2-report
check "report: exit 0" eq "$(cat "$TMP/runs/doc2-report/rc")" 0
api "$REVIEWER_KEY" GET "/api/decision/$id/executions" >"$TMP/executions2.json"
check "one execution receipt" eq "$(jq '.executions | length' "$TMP/executions2.json")" 1
check "one outcome: failed" eq "$(jq -r '[(.outcomes | length), .outcomes[0].outcome.status] | join(" ")' "$TMP/executions2.json")" "1 failed"

