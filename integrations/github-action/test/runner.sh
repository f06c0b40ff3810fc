# Sourced by test.sh: a small emulation of what the GitHub Actions runner does
# for this repository's composite action and for the documented workflow —
# read action.yml, map inputs to the step's environment, set the runner's
# variables, run `shell: bash` steps, and read $GITHUB_OUTPUT back.
#
# It understands exactly the YAML this directory and the doc use (plain,
# quoted and `|` block scalars, one level of mappings) and fails loudly on
# anything else, so a change to action.yml or to the doc cannot be misread
# silently.

# --- action.yml --------------------------------------------------------------

# Keys of a top-level section (inputs or outputs), one per line.
yaml_section_keys() {
    awk -v sec="$1" '
        /^[^ #]/ { insec = ($0 ~ "^" sec ":"); next }
        insec && /^  [A-Za-z0-9_-]+:/ { k = $0; sub(/^  /, "", k); sub(/:.*/, "", k); print k }
    ' "$ACTION_YML"
}

# The raw value of `    FIELD:` under `  NAME:` in a top-level section.
yaml_section_field() {
    awk -v sec="$1" -v name="$2" -v field="$3" '
        /^[^ #]/ { insec = ($0 ~ "^" sec ":"); next }
        insec && /^  [A-Za-z0-9_-]+:/ { cur = $0; sub(/^  /, "", cur); sub(/:.*/, "", cur); next }
        insec && cur == name && $0 ~ "^    " field ":" {
            v = $0; sub("^    " field ":[ ]*", "", v); print v; exit
        }
    ' "$ACTION_YML"
}

# A YAML flow scalar as text: '...' and "..." lose their quotes ('' is ').
yaml_scalar() {
    local v=$1
    if [[ $v =~ ^\'(.*)\'$ ]]; then
        v=${BASH_REMATCH[1]}
        printf '%s' "${v//\'\'/\'}"
    elif [[ $v =~ ^\"(.*)\"$ ]]; then
        [[ ${BASH_REMATCH[1]} != *\\* ]] || { echo "runner.sh: escapes in double-quoted YAML are not supported: $v" >&2; return 1; }
        printf '%s' "${BASH_REMATCH[1]}"
    else
        [[ $v != *' #'* ]] || { echo "runner.sh: comments after values are not supported: $v" >&2; return 1; }
        printf '%s' "$v"
    fi
}

# The composite step's env: mapping, as "VAR INPUT" lines for entries of
# the form `VAR: ${{ inputs.INPUT }}`, and "VAR !raw" for anything else.
action_env_map() {
    awk '
        /^runs:/ { inruns = 1; next }
        /^[^ #]/ { inruns = 0 }
        inruns && /^      env:/ { inenv = 1; next }
        inenv && /^        [A-Za-z_][A-Za-z0-9_]*:/ {
            line = $0; sub(/^ +/, "", line)
            var = line; sub(/:.*/, "", var)
            val = line; sub(/^[^:]*:[ ]*/, "", val)
            if (match(val, /^\$\{\{ inputs\.[A-Za-z0-9_-]+ \}\}$/)) {
                inp = val; sub(/^\$\{\{ inputs\./, "", inp); sub(/ \}\}$/, "", inp)
                print var, inp
            } else print var, "!" val
            next
        }
        inenv && !/^        / { inenv = 0 }
    ' "$ACTION_YML"
}

# The step's `run:` line (a single line in action.yml).
action_run_line() {
    awk '/^      run:/ { v = $0; sub(/^      run:[ ]*/, "", v); print v }' "$ACTION_YML"
}

# --- running steps like a runner -------------------------------------------

# A fresh job: its own RUNNER_TEMP and workspace, as on a new runner.
new_job() {
    JOB_DIR=$(mktemp -d "$TMP/job.XXXXXX")
    JOB_TEMP=$JOB_DIR/runner_temp
    WORKSPACE=$JOB_DIR/workspace
    mkdir -p "$JOB_TEMP" "$WORKSPACE"
}

# runner_exec DIR SCRIPT [VAR=VALUE...]: runs SCRIPT as `shell: bash` does
# (bash --noprofile --norc -eo pipefail FILE) in the workspace, with only the
# runner's variables and the given ones, a fresh $GITHUB_OUTPUT and the
# job's $GITHUB_STEP_SUMMARY. Leaves DIR/stdout, DIR/stderr, DIR/rc, and one
# DIR/out.NAME file per output.
runner_exec() {
    local dir=$1 script=$2
    shift 2
    mkdir -p "$dir"
    : >"$dir/output"
    touch "$JOB_DIR/summary"
    cp "$script" "$dir/step.sh"
    local start=$SECONDS
    (
        cd "$WORKSPACE" && env -i \
            PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 \
            CI=true GITHUB_ACTIONS=true \
            GITHUB_RUN_ID="$RUN_ID" GITHUB_RUN_ATTEMPT="${RUN_ATTEMPT:-1}" GITHUB_RUN_NUMBER=7 \
            GITHUB_REPOSITORY=acme/shop GITHUB_REPOSITORY_OWNER=acme \
            GITHUB_SERVER_URL=https://github.com GITHUB_API_URL=https://api.github.com \
            GITHUB_WORKFLOW="Deploy with Gatehouse approval" GITHUB_JOB=deploy \
            GITHUB_SHA="$GITHUB_SHA_FOR_TESTS" GITHUB_REF=refs/heads/main GITHUB_REF_NAME=main \
            GITHUB_ACTOR=octocat GITHUB_EVENT_NAME=workflow_dispatch \
            GITHUB_WORKSPACE="$WORKSPACE" RUNNER_TEMP="$JOB_TEMP" RUNNER_OS=Linux \
            GITHUB_OUTPUT="$dir/output" GITHUB_STEP_SUMMARY="$JOB_DIR/summary" \
            "$@" \
            bash --noprofile --norc -eo pipefail "$dir/step.sh"
    ) >"$dir/stdout" 2>"$dir/stderr"
    echo $? >"$dir/rc"
    echo $((SECONDS - start)) >"$dir/elapsed"
    parse_outputs "$dir/output" "$dir" || echo 99 >"$dir/rc"
    LAST=$dir
}

# Reads $GITHUB_OUTPUT as the runner does: `name=value` lines and
# `name<<DELIMITER` ... `DELIMITER` blocks.
parse_outputs() {
    local file=$1 dir=$2 line name delim value first
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line =~ ^([A-Za-z0-9_-]+)\<\<(.+)$ ]]; then
            name=${BASH_REMATCH[1]}
            delim=${BASH_REMATCH[2]}
            value=""
            first=1
            while :; do
                if ! IFS= read -r line; then
                    echo "GITHUB_OUTPUT: no closing delimiter for $name" >"$dir/output-error"
                    return 1
                fi
                [ "$line" = "$delim" ] && break
                if [ -n "$first" ]; then value=$line; first=""; else value+=$'\n'$line; fi
            done
            printf '%s' "$value" >"$dir/out.$name"
        elif [[ $line =~ ^([A-Za-z0-9_-]+)=(.*)$ ]]; then
            printf '%s' "${BASH_REMATCH[2]}" >"$dir/out.${BASH_REMATCH[1]}"
        elif [ -n "$line" ]; then
            echo "GITHUB_OUTPUT: unreadable line: $line" >"$dir/output-error"
            return 1
        fi
    done <"$file"
}

# run_action NAME: runs the composite action with the inputs in the
# associative array IN (unset inputs get action.yml's default, or empty
# like a runner gives a composite action), through action.yml's own env
# mapping and run line. An input action.yml does not declare is an error.
run_action() {
    local dir=$TMP/runs/$1 var input value envs=() declared
    declared=" $(yaml_section_keys inputs | tr '\n' ' ') "
    for input in "${!IN[@]}"; do
        if [[ $declared != *" $input "* ]]; then
            echo "run_action: input '$input' is not declared in action.yml" >&2
            mkdir -p "$dir" && echo 98 >"$dir/rc" && : >"$dir/stdout" && : >"$dir/stderr"
            LAST=$dir
            return
        fi
    done
    while read -r var input; do
        if [[ -v IN[$input] ]]; then
            value=${IN[$input]}
        else
            value=$(yaml_scalar "$(yaml_section_field inputs "$input" default)")
        fi
        envs+=("$var=$value")
    done < <(action_env_map)
    printf '%s\n' "$(action_run_line)" >"$TMP/action-step.sh"
    runner_exec "$dir" "$TMP/action-step.sh" GITHUB_ACTION_PATH="$ACTION_DIR" "${envs[@]}"
}

# --- the documented workflow -------------------------------------------------

# Splits the first ```yaml block after "## The complete workflow" in the doc
# into DIR/N/: `id`, `uses`, `if`, `run` (the script), and `with/KEY` and
# `env/KEY` holding each value as YAML gives it (block scalars kept with
# their final newline; quotes removed).
doc_steps() {
    local out=$1
    mkdir -p "$out"
    awk '
        /^## The complete workflow/ { inhead = 1; next }
        inhead && /^```yaml$/ { inyaml = 1; next }
        inyaml && /^```$/ { exit }
        inyaml { print }
    ' "$DOC" >"$out/workflow.yml"
    [ -s "$out/workflow.yml" ] || { echo "doc_steps: no workflow block found in $DOC" >&2; return 1; }
    awk -v out="$out" '
        function flush_block(   f) {
            if (blockfile != "") { printf "%s", block > blockfile; close(blockfile) }
            blockfile = ""; block = ""
        }
        function put(file, value) { printf "%s", value > file; close(file) }
        function indent(s) { match(s, /^ */); return RLENGTH }
        /^      - / { flush_block(); n++; system("mkdir -p \"" out "/" n "/with\" \"" out "/" n "/env\""); sub(/^      - /, "        "); map = "" }
        n == 0 { next }
        blockfile != "" {
            if ($0 ~ /^ *$/ || indent($0) >= blockindent) {
                line = $0; line = substr(line, blockindent + 1); block = block line "\n"; next
            }
            flush_block()
        }
        /^        [A-Za-z-]+:/ {
            key = $0; sub(/^ +/, "", key); sub(/:.*/, "", key)
            val = $0; sub(/^ +[A-Za-z-]+:[ ]*/, "", val)
            if (key == "with" || key == "env") { map = key; next }
            map = ""
            if (val == "|") { blockfile = out "/" n "/" key; blockindent = 10; next }
            put(out "/" n "/" key, val); next
        }
        map != "" && /^          [A-Za-z0-9_-]+:/ {
            key = $0; sub(/^ +/, "", key); sub(/:.*/, "", key)
            val = $0; sub(/^ +[A-Za-z0-9_-]+:[ ]*/, "", val)
            if (val == "|") { blockfile = out "/" n "/" map "/" key; blockindent = 12; next }
            put(out "/" n "/" map "/" key ".raw", val); next
        }
        /^ *$/ { next }
        { print "doc_steps: line not understood: " $0 > "/dev/stderr"; bad = 1 }
        END { flush_block(); exit bad }
    ' "$out/workflow.yml" || return 1
    # Flow scalars: remove quotes now; block scalars are already text.
    local f
    for f in "$out"/*/with/*.raw "$out"/*/env/*.raw; do
        [ -e "$f" ] || continue
        yaml_scalar "$(cat "$f")" >"${f%.raw}" || return 1
        rm "$f"
    done
}

# The step directory whose `id` is $2, under the doc_steps output $1.
doc_step() {
    local d
    for d in "$1"/*/; do
        if [ -f "$d/id" ] && [ "$(cat "$d/id")" = "$2" ]; then
            printf '%s' "${d%/}"
            return
        fi
    done
    return 1
}

# Replaces each ${{ EXPR }} in $1 with EXPR_VALUES[EXPR]; an expression the
# table does not hold is an error, so the doc cannot use one the test does
# not know. Prints the result followed by "x" (to keep trailing newlines).
resolve_expressions() {
    local text=$1 out="" expr
    while [[ $text == *'${{'* ]]; do
        out+=${text%%'${{'*}
        text=${text#*'${{'}
        [[ $text == *'}}'* ]] || { echo "unterminated expression in: $1" >&2; return 1; }
        expr=${text%%'}}'*}
        text=${text#*'}}'}
        expr=${expr#"${expr%%[![:space:]]*}"}
        expr=${expr%"${expr##*[![:space:]]}"}
        if [[ ! -v EXPR_VALUES[$expr] ]]; then
            echo "the doc uses an expression the test does not know: \${{ $expr }}" >&2
            return 1
        fi
        out+=${EXPR_VALUES[$expr]}
    done
    printf '%sx' "$out$text"
}

# run_doc_step NAME STEPDIR [VAR=VALUE...]: runs a documented `run:` step
# with its env: values resolved, like a runner.
run_doc_step() {
    local name=$1 step=$2 envs=() f value
    shift 2
    for f in "$step"/env/*; do
        [ -e "$f" ] || continue
        if ! value=$(resolve_expressions "$(cat "$f"; printf x)" 2>"$TMP/resolve-error"); then
            mkdir -p "$TMP/runs/$name"
            cp "$TMP/resolve-error" "$TMP/runs/$name/stderr"
            : >"$TMP/runs/$name/stdout"
            echo 97 >"$TMP/runs/$name/rc"
            LAST=$TMP/runs/$name
            return
        fi
        value=${value%x}
        value=${value%x}
        envs+=("$(basename "$f")=$value")
    done
    runner_exec "$TMP/runs/$name" "$step/run" "${envs[@]}" "$@"
}
