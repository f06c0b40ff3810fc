#!/usr/bin/env bash
# End-to-end tests of Gatehouse's MCP support with the official Python MCP
# SDK (integrations/mcp/e2e.py): the gating proxy in front of the reference
# filesystem server, and Gatehouse's own tools over stdio and streamable HTTP.
#
#   GATEHOUSE_BIN=/path/to/gatehouse integrations/mcp/test.sh
#
# GATEHOUSE_BIN defaults to <repo>/target/debug/gatehouse. The interpreter is
# GATEHOUSE_TEST_PYTHON (scripts/test points it at the virtual environment it
# installs .ci/requirements.txt into), else python3, which then needs those
# requirements itself. The filesystem server comes from `npm ci` in
# integrations/mcp. Prints one line per check and `# N passed, M failed`
# last; exits non-zero if any check failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

# A relative GATEHOUSE_BIN means relative to where the caller stands, so it
# is made absolute before this script changes directory.
bin=${GATEHOUSE_BIN:-$repo/target/debug/gatehouse}
case "$bin" in
    /*) ;;
    *) bin="$PWD/$bin" ;;
esac
export GATEHOUSE_BIN=$bin
# The same for an interpreter given as a path; a bare name is looked up in
# PATH.
python=${GATEHOUSE_TEST_PYTHON:-python3}
case "$python" in
    /*) ;;
    */*) python="$PWD/$python" ;;
esac

cd "$repo"

if [ ! -x "$GATEHOUSE_BIN" ]; then
    echo "integrations/mcp/test.sh: no gatehouse binary at $GATEHOUSE_BIN (build it, or set GATEHOUSE_BIN)" >&2
    exit 2
fi
if [ ! -x integrations/mcp/node_modules/.bin/mcp-server-filesystem ]; then
    echo "integrations/mcp/test.sh: the reference filesystem server is missing;" \
        "run \`npm ci\` in integrations/mcp (scripts/test does)" >&2
    exit 2
fi
# Said here rather than as an ImportError traceback from the script; found,
# not imported, since importing the SDK takes a second.
if ! "$python" -c 'import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ["mcp", "jsonschema", "httpx2", "anyio"]))' 2>/dev/null; then
    echo "integrations/mcp/test.sh: $python lacks the MCP SDK; install .ci/requirements.txt into it" \
        "(e.g. python3 -m venv target/schemathesis-venv && target/schemathesis-venv/bin/pip install -r .ci/requirements.txt," \
        "then GATEHOUSE_TEST_PYTHON=$repo/target/schemathesis-venv/bin/python)" >&2
    exit 2
fi

# Bytecode caches would land in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$python" integrations/mcp/e2e.py
