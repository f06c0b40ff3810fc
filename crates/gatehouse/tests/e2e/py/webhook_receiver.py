#!/usr/bin/env python3
"""A Standard Webhooks receiver for Gatehouse's end-to-end tests.

The Rust tests spawn this as a child process (with the interpreter named by
GATEHOUSE_TEST_PYTHON, which scripts/test points at a virtual environment that
has the pinned packages of .ci/requirements.txt):

    $GATEHOUSE_TEST_PYTHON webhook_receiver.py --out FILE [--secret whsec_...]...
        [--fail-first N] [--status CODE] [--delay SECONDS]

It listens on 127.0.0.1 on a port the system picks and prints exactly one
line to stdout, then serves until it is killed:

    listening on http://127.0.0.1:PORT

Every POST, to any path, is checked with the `standardwebhooks` package (the
reference implementation of the Standard Webhooks specification, not
Gatehouse's own code, so the test is a real check of the signature format)
and logged to --out as one JSON object per line:

    {"n": 1, "path": "/hook", "verified": true, "error": null,
     "headers": {"webhook-id": "...", ...}, "body": {...}, "answered": 204}

- n: the request's 1-based number, in order of arrival.
- verified: true when the signature matches one of the --secret values;
  false when none does, or when no --secret was given (then error says so).
- error: why verification failed, or null.
- headers: the request's headers, names lowercased (repeated names joined
  with ", ").
- body: the body parsed as JSON, or its text when it is not JSON.
- answered: the status this receiver answers: 500 for the first
  --fail-first requests, --status for the others.

The line is written (one write, under a lock, to a file opened for
appending) before the answer is sent, and before any --delay, so a test that
has seen the answer, or whose sender gave up waiting, can read the line.
Readers should still only trust lines that end with a newline.

The process also exits by itself when its parent process goes away, so a
test that panics before killing it does not leave it running.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        help="Standard Webhooks secret (whsec_<base64>); repeat for several, "
        "e.g. during a rotation. Without it, nothing is verified.",
    )
    parser.add_argument("--out", required=True, help="JSON Lines log to append to")
    parser.add_argument(
        "--fail-first",
        type=int,
        default=0,
        metavar="N",
        help="answer 500 to the first N requests (default 0)",
    )
    parser.add_argument(
        "--status",
        type=int,
        default=204,
        metavar="CODE",
        help="status for the other requests (default 204)",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="sleep this long before answering each request (default 0)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port to listen on (default: one the system picks), e.g. to come "
        "back on the address a receiver that was down had",
    )
    args = parser.parse_args()
    if args.fail_first < 0:
        parser.error("--fail-first must not be negative")
    if not 200 <= args.status <= 599:
        parser.error("--status must be a final status code (200-599)")
    if args.delay < 0:
        parser.error("--delay must not be negative")
    return args


def verify(verifiers, body, headers):
    """Returns (verified, error) for one delivery.

    A delivery is verified when any of the secrets accepts it. The library
    raises WebhookVerificationError for a missing header, a timestamp more
    than five minutes away or no matching signature, and plain exceptions
    (ValueError, binascii.Error, UnicodeDecodeError) for malformed input;
    every one of them counts as a failure with its message kept.
    """
    if not verifiers:
        return False, "not checked: no --secret given"
    errors = []
    for webhook in verifiers:
        try:
            # json_parse=False: a signed body that is not JSON is still
            # correctly signed; the JSON check is the test's business.
            webhook.verify(body, headers, json_parse=False)
            return True, None
        except Exception as error:  # noqa: BLE001 - every failure is reported
            message = f"{type(error).__name__}: {error}"
            if message not in errors:
                errors.append(message)
    return False, "; ".join(errors)


def parse_body(body):
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Receiver:
    """State shared by the request threads."""

    def __init__(self, args):
        # Built once, so a malformed secret fails at start, not per request.
        self.verifiers = [Webhook(secret) for secret in args.secret]
        self.fail_first = args.fail_first
        self.status = args.status
        self.delay = args.delay
        # O_APPEND and one os.write per line: lines never interleave, and a
        # reader sees each line whole or not at all in practice.
        self.out = os.open(args.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.lock = threading.Lock()
        self.count = 0

    def next_number(self):
        with self.lock:
            self.count += 1
            return self.count

    def log(self, record):
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self.lock:
            written = 0
            while written < len(line):
                # os.write has no buffer of its own: once it returns, the
                # line is in the file for any reader.
                written += os.write(self.out, line[written:])


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients that send "Expect: 100-continue" get their 100;
    # every answer still closes the connection (see answer()), so a client
    # never reuses a connection this server is about to drop.
    protocol_version = "HTTP/1.1"
    receiver = None  # set in main()

    def log_message(self, format, *args):
        # Quiet: a test that pipes stderr and never reads it would otherwise
        # block this process once the pipe's buffer is full.
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    # Trailers, if any, end with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self):
        receiver = self.receiver
        n = receiver.next_number()
        body = self.read_body()
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        verified, error = verify(receiver.verifiers, body, headers)
        status = 500 if n <= receiver.fail_first else receiver.status
        receiver.log(
            {
                "n": n,
                "path": self.path,
                "verified": verified,
                "error": error,
                "headers": headers,
                "body": parse_body(body),
                "answered": status,
            }
        )
        if receiver.delay:
            time.sleep(receiver.delay)
        self.answer(status)

    def answer(self, status):
        try:
            self.send_response(status)
            # A 204 (or 304) has no body and must not announce a length.
            if status not in (204, 304):
                self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            # The sender gave up (e.g. its timeout was shorter than --delay).
            pass
        self.close_connection = True


class Server(ThreadingHTTPServer):
    # The default listen backlog of 5 makes the kernel reset connections
    # when a burst of deliveries arrives at once (seen with 32 concurrent
    # senders); a test should see every delivery.
    request_queue_size = 128
    daemon_threads = True


def exit_with_parent():
    """Exits the process once the parent that started it has gone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    args = parse_args()
    Handler.receiver = Receiver(args)
    # Port 0: the system picks a free port, so parallel tests never collide.
    server = Server(("127.0.0.1", args.port), Handler)
    exit_with_parent()
    # The socket listens already: a connection made as soon as this line is
    # read waits in the backlog until serve_forever() accepts it.
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
