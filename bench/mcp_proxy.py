"""What the MCP gating proxy adds to an allowed tool call.

The same `read_text_file` call is made against the reference filesystem
server directly and through `gatehouse mcp proxy` (decision, redemption,
receipt and outcome on the embedded SQLite store), in alternating blocks so
both see the same machine noise; prints a Markdown table of medians and p90s.

    target/schemathesis-venv/bin/python bench/mcp_proxy.py [calls per side, default 400]

Needs a release build (`cargo build --release -p gatehouse`, or
GATEHOUSE_BIN), `npm ci` in integrations/mcp, and the Python MCP SDK
(`mcp`, pinned in .ci/requirements.txt).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO = Path(__file__).resolve().parents[1]
BIN = os.environ.get("GATEHOUSE_BIN", str(REPO / "target/release/gatehouse"))
FS = REPO / "integrations/mcp/node_modules/.bin/mcp-server-filesystem"
BLOCK = 50


async def timed_reads(params: StdioServerParameters, path: str, count: int) -> list[float]:
    """Latencies in milliseconds of `count` sequential reads in one session."""
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.list_tools()
        # One call outside the timing: the first one pays for warm-up.
        await session.call_tool("read_text_file", {"path": path})
        out = []
        for _ in range(count):
            start = time.perf_counter()
            result = await session.call_tool("read_text_file", {"path": path})
            out.append((time.perf_counter() - start) * 1000)
            if result.is_error:
                raise SystemExit(f"the read failed: {result.content}")
        return out


def p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[-1]


async def main(calls: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="gatehouse-mcp-bench-"))
    server = None
    try:
        shared = Path(os.path.realpath(work / "shared"))
        shared.mkdir()
        (shared / "notes.txt").write_text("x" * 1024)
        policies = work / "policies"
        policies.mkdir()
        for f in (REPO / "examples/policies/mcp-filesystem").iterdir():
            (policies / f.name).write_text(f.read_text().replace("/srv/shared", str(shared)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
        data = str(work / "data")
        key = subprocess.run([BIN, "keys", "create", "--role", "agent", "--data", data],
                             env=env, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
        server = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data", data,
                                   "--policies", str(policies), "--rate-limit", "0"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert server.stdout is not None
        url = ""
        for line in server.stdout:
            if m := re.search(r"listening on (http://\S+)", line):
                url = m.group(1)
                break
        direct = StdioServerParameters(command=str(FS), args=[str(shared)], env=env)
        proxied = StdioServerParameters(
            command=BIN,
            args=["mcp", "proxy", "--agent", "bench", "--subject-arg", "path", "--", str(FS), str(shared)],
            env={**env, "GATEHOUSE_URL": url, "GATEHOUSE_API_KEY": key},
        )
        path = str(shared / "notes.txt")
        d: list[float] = []
        p: list[float] = []
        for _ in range(max(1, calls // BLOCK)):
            d += await timed_reads(direct, path, BLOCK)
            p += await timed_reads(proxied, path, BLOCK)
        cores = os.cpu_count()
        print(f"{len(d)} reads per side in blocks of {BLOCK}, alternating; {cores} cores\n")
        print("| | median ms | p90 ms |")
        print("|---|---|---|")
        print(f"| direct | {statistics.median(d):.2f} | {p90(d):.2f} |")
        print(f"| through the proxy | {statistics.median(p):.2f} | {p90(p):.2f} |")
        print(f"| added by the gate | {statistics.median(p) - statistics.median(d):.2f} | |")
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 400))
