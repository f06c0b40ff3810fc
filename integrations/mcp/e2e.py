#!/usr/bin/env python3
"""End-to-end tests of Gatehouse's MCP support, driven by the official Python
MCP SDK (the `mcp` package from PyPI), the client most Python agents use.

It mirrors crates/gatehouse/tests/e2e/mcp.rs, which drives the same peers
with the Rust `rmcp` client, so that both SDKs are known to work:

1. `gatehouse mcp proxy` in front of the reference filesystem server
   (@modelcontextprotocol/server-filesystem, installed by `npm ci` in this
   directory), gated by examples/policies/mcp-filesystem.
2. Gatehouse's own MCP tools, over stdio (`gatehouse mcp serve`) and over
   streamable HTTP (`/mcp`), with examples/policies/seed-scenarios.

The script is self-contained: it makes its own temporary directories, keys
and `gatehouse serve` processes, and stops them. Run it through test.sh, or

    GATEHOUSE_BIN=target/debug/gatehouse python integrations/mcp/e2e.py

with a Python that has .ci/requirements.txt installed. Each check prints
`ok    NAME` or `FAIL  NAME: details`; the last line is `# N passed, M
failed`, and the exit status is 1 if any check failed. KEEP_TMP=1 keeps the
temporary directory (with every server's and proxy's log) for a look
afterwards; VERBOSE=1 prints each failure's traceback.

The script is this entry point and the package next to it: e2e/harness.py
(the check runner, `gatehouse serve` processes and keys, MCP sessions,
schema validation, the run and its summary), e2e/proxy_checks.py (part 1)
and e2e/tools_checks.py (part 2).
"""

from __future__ import annotations

import asyncio
import sys

# `e2e` below is the package directory next to this file, not this file: on
# the same path entry, a directory with an __init__.py comes before a module
# of the same name.
from e2e.harness import run
from e2e.proxy_checks import proxy_checks
from e2e.tools_checks import tools_checks

if __name__ == "__main__":
    sys.exit(asyncio.run(run([(proxy_checks, "proxy"), (tools_checks, "gatehouse tools")])))
