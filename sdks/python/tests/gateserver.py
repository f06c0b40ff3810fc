"""A real ``gatehouse serve`` for the tests: its own data directory, keys
made with the CLI before it starts, a free port, stopped at the end.

The binary comes from GATEHOUSE_BIN (an absolute path), else the repo's
target/debug/gatehouse. A missing binary fails the run: these tests never
stand in for the server.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
POLICIES = Path(__file__).resolve().parent / "policies"
LISTENING = re.compile(r"gatehouse listening on (http://\S+)")


def gatehouse_bin() -> str:
    path = os.environ.get("GATEHOUSE_BIN") or str(REPO / "target" / "debug" / "gatehouse")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"no gatehouse binary at {path}: build it (cargo build -p gatehouse) or set GATEHOUSE_BIN"
        )
    return path


def cli(*args: str, data: Path | None = None, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Runs the gatehouse CLI; returns its standard output."""
    cmd = [gatehouse_bin(), *args]
    if data is not None:
        cmd += ["--data", str(data)]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr}{result.stdout}")
    return result.stdout


@dataclass
class Server:
    data: Path
    url: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    log: Path | None = None

    def key(self, role: str, name: str, user: str | None = None) -> str:
        """Creates an API key with the CLI; the secret is the last line."""
        args = ["keys", "create", "--role", role, "--name", name]
        if user:
            args += ["--user", user]
        secret = cli(*args, data=self.data).strip().splitlines()[-1]
        self.keys[name] = secret
        return secret

    def user(self, name: str, *groups: str) -> None:
        args = ["users", "create", name, "--password-stdin"]
        for g in groups:
            args += ["--group", g]
        cmd = [gatehouse_bin(), *args, "--data", str(self.data)]
        subprocess.run(cmd, input="a long test password\n", text=True, check=True, capture_output=True, timeout=60)

    def start(self, *flags: str, policies: Path | None = POLICIES) -> Server:
        """Starts the server with ``flags``; ``policies=None`` leaves out
        ``--policies``, so the server uses its built-in starter policies."""
        assert self.process is None
        self.log = self.data / "server.log"
        log = open(self.log, "w")
        self.process = subprocess.Popen(
            [
                gatehouse_bin(),
                "serve",
                "--data",
                str(self.data),
                "--listen",
                "127.0.0.1:0",
                *(["--policies", str(policies)] if policies is not None else []),
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        found: list[str] = []

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                m = LISTENING.search(line)
                if m and not found:
                    found.append(m.group(1))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 30
        while not found:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gatehouse serve did not start: {self.log.read_text()}")
            time.sleep(0.05)
        self.url = found[0]
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


def new_server() -> Server:
    return Server(data=Path(tempfile.mkdtemp(prefix="gatehouse-sdk-py-")))
