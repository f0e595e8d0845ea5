"""Real receivers on 127.0.0.1 for the alert tests: an aiosmtpd inbox that checks the
login, an HTTP server that records what is POSTed, and a free port to put them on."""

import json
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
