#!/usr/bin/env bash
# The Python SDK's whole test suite: the model check against the OpenAPI
# document, mypy --strict on the package, and pytest against a real
# `gatehouse serve` (started by the tests themselves).
#
# The binary is GATEHOUSE_BIN (an absolute path), else the repository's
# target/debug/gatehouse. The virtual environment lives in
# target/python-sdk-venv and is (re)made whenever requirements-dev.txt or
# the Python version changes: their hash is stored in it only after a
# successful install, so an interrupted install is redone next time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

export GATEHOUSE_BIN="${GATEHOUSE_BIN:-$repo/target/debug/gatehouse}"
case "$GATEHOUSE_BIN" in
    /*) ;;
    *) GATEHOUSE_BIN="$PWD/$GATEHOUSE_BIN" ;;
esac
if [ ! -x "$GATEHOUSE_BIN" ]; then
    echo "error: no gatehouse binary at $GATEHOUSE_BIN (build it, or set GATEHOUSE_BIN)" >&2
    exit 1
fi

# A benchmark needs a quiet machine: wait for it before installing or testing.
while [ -e /tmp/gatehouse-bench.lock ]; do sleep 15; done

# Caches go to target/, not into the source tree.
export PYTHONDONTWRITEBYTECODE=1
python="${PYTHON:-python3}"
venv="$repo/target/python-sdk-venv"
want=$( { sha256sum requirements-dev.txt; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | awk '{print $1}')
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/requirements.sha256" 2>/dev/null || true)" != "$want" ]; then
    echo "installing sdks/python/requirements-dev.txt into $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt
    echo "$want" >"$venv/requirements.sha256"
fi

# The package as users get it: built into a wheel and installed (hatchling
# comes pinned from requirements-dev.txt, so nothing else is fetched).
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall .

"$venv/bin/python" tools/check_models.py "$repo/openapi/gatehouse.json"
"$venv/bin/mypy" --strict --cache-dir "$repo/target/python-sdk-mypy-cache" src/gatehouse
# The examples are user code: they must type-check against the package too.
MYPYPATH=examples "$venv/bin/mypy" --strict --cache-dir "$repo/target/python-sdk-mypy-cache" examples
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
