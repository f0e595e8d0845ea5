"""Real receivers on 127.0.0.1 for the alert tests (and benchmarks/delivery_deadline.py):
an aiosmtpd inbox that checks the login, an HTTP server that records what is POSTed, a
receiver that trickles bytes, and a free port to put them on."""

import json
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.smtp import AuthResult

PASSWORD = "hunter2-not-for-logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages, self.logins = [], []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode())
        return "250 OK"

    def __call__(self, server, session, envelope, mechanism, auth_data):  # the authenticator
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.login == b"alerts" and auth_data.password == PASSWORD.encode())


class Receiver:
    """An HTTP server that records each POSTed JSON body by path."""

    def __init__(self, port: int):
        self.posts = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                posts.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SlowLoris:
    """Accepts, reads what comes, then sends one byte of ``prefix`` (then "a"s) every
    ``every`` seconds. It records each connection and whether the client closed it. It
    gives up after ``limit`` bytes by closing the connection itself: a client without a
    deadline then fails with another reason, so the test fails instead of hanging."""

    def __init__(self, prefix: bytes, every: float = 0.2, limit: int = 150):
        self.prefix, self.every, self.limit = prefix, every, limit
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections, self.cut_by_client, self.gave_up = 0, 0, 0
        self.changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by the test
            with self.changed:
                self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        outcome = "gave_up"
        with conn:
            for i in range(self.limit):
                readable, _, _ = select.select([conn], [], [], self.every)
                try:
                    if readable and not conn.recv(65536):
                        outcome = "cut_by_client"
                        break
                    conn.sendall(self.prefix[i:i + 1] or b"a")
                except OSError:
                    outcome = "cut_by_client"
                    break
        with self.changed:
            setattr(self, outcome, getattr(self, outcome) + 1)
            self.changed.notify_all()

    def wait_all_closed(self) -> None:
        with self.changed:  # a generous bound only so that a broken server cannot hang the suite
            self.changed.wait_for(lambda: self.cut_by_client + self.gave_up >= self.connections, timeout=60)

    def close(self):
        self.sock.close()
