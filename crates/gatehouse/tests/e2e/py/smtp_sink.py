#!/usr/bin/env python3
"""An SMTP server that keeps every message, for Gatehouse's end-to-end tests.

The Rust tests spawn this as a child process (with the interpreter named by
GATEHOUSE_TEST_PYTHON, which scripts/test points at a virtual environment that
has the pinned packages of .ci/requirements.txt):

    $GATEHOUSE_TEST_PYTHON smtp_sink.py --dir DIR

It is a real SMTP server (aiosmtpd), so the test exercises Gatehouse's own
SMTP client end to end. It listens on 127.0.0.1 on a port the system picks
and prints exactly one line to stdout, then serves until it is killed:

    listening on smtp://127.0.0.1:PORT

Any sender and recipient is accepted. No authentication is required, but
AUTH PLAIN and AUTH LOGIN are offered without TLS and accept any
credentials, so a test can also check that its client logs in.

Each message is written to DIR (created if missing) as 0001.json,
0002.json, ... in order of arrival:

    {"mail_from": "a@example.com", "rcpt_tos": ["b@example.com"],
     "data": "<the raw message, CRLF line ends, as text>",
     "auth": {"mechanism": "PLAIN", "login": "user", "password": "pass"} or null}

The file is written under a temporary name (.NNNN.json.tmp) and renamed, so
a reader that lists *.json never sees half a message.

The process also exits by itself when its parent process goes away, so a
test that panics before killing it does not leave it running.
"""

import argparse
import json
import logging
import os
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    """aiosmtpd handler: stores each message as DIR/NNNN.json."""

    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            number = self.count
        auth = None
        if session.authenticated and isinstance(session.auth_data, dict):
            auth = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            # SMTPUTF8/8BITMIME messages are UTF-8; anything else that is
            # not is replaced rather than refused, and stays valid JSON.
            "data": envelope.original_content.decode("utf-8", errors="replace"),
            "auth": auth,
        }
        final = os.path.join(self.directory, f"{number:04}.json")
        temporary = os.path.join(self.directory, f".{number:04}.json.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(record, file, ensure_ascii=False)
        os.replace(temporary, final)
        return "250 OK: message stored"


def accept_everyone(server, session, envelope, mechanism, auth_data):
    """aiosmtpd authenticator: every login succeeds.

    What was given is kept as the session's auth_data, and handle_DATA
    stores it with the message.
    """
    if isinstance(auth_data, LoginPassword):
        auth_data = {
            "mechanism": mechanism,
            "login": auth_data.login.decode("utf-8", errors="replace"),
            "password": auth_data.password.decode("utf-8", errors="replace"),
        }
    else:
        auth_data = {"mechanism": mechanism, "login": None, "password": None}
    return AuthResult(success=True, auth_data=auth_data)


class AnyPortController(Controller):
    """A Controller that may listen on port 0.

    aiosmtpd binds whatever port it is given, 0 included, but then connects
    to self.port to check the server answers (_trigger_server), which fails
    for 0. Reading the bound port back first makes both work, with no window
    in which another process could take the port.
    """

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def quiet_login_data_warning():
    """Drops aiosmtpd's own "Session.login_data is deprecated" warning.

    aiosmtpd logs it on every successful AUTH (it sets the legacy attribute
    itself); it is noise in a test's output, and a test that pipes stderr
    without reading it could block this process once the pipe is full.
    Every other message of aiosmtpd's log still reaches stderr.
    """
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage()
    )


def exit_with_parent():
    """Exits the process once the parent that started it has gone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="directory to store messages in")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    quiet_login_data_warning()

    controller = AnyPortController(
        Sink(args.dir),
        hostname="127.0.0.1",
        port=0,
        # A fixed name: the default asks DNS for this host's full name,
        # which can stall for seconds on a machine without a resolver.
        server_hostname="smtp-sink.test",
        # Offer AUTH on a plain connection; nothing requires it.
        auth_require_tls=False,
        authenticator=accept_everyone,
        # Messages stay bytes: original_content is what the client sent.
        decode_data=False,
        # The 5 seconds by default can pass on a busy two-core CI machine.
        ready_timeout=30,
    )
    controller.start()
    exit_with_parent()
    print(f"listening on smtp://127.0.0.1:{controller.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
