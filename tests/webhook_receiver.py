"""A clinic's system on loopback, receiving our webhooks: it verifies every request with the
Standard Webhooks reference library (`standardwebhooks.Webhook(secret).verify`), answers per path
from a script (a status, `hang` until released, or `drop`: the connection closed unanswered once
the event is taken), and keeps what it saw, each with the answer it was given, as a receiver that
dedupes by webhook-id does (`accepted_ids`: ids it answered 2xx, each acted on once)."""

import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

HANG = "hang"
DROP = "drop"


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    verified: bool
    error: str = ""
    answer: object = None  # the status it was answered, or HANG or DROP

    @property
    def event(self):
        return json.loads(self.body)

    @property
    def webhook_id(self):
        return self.headers["webhook-id"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class WebhookReceiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = {}
        self.scripts = defaultdict(deque)  # path: answers to give, then 200
        self.received = []
        self.accepted_ids = []
        self.in_flight = 0
        self.arrived = threading.Condition(self.lock)
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._handle(self, headers, body)

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def expect(self, path, secret, *answers):
        """Verify `path`'s requests with this secret and answer them with these statuses (or HANG),
        then 200."""
        self.secrets[path] = secret
        self.scripts[path].extend(answers)

    def _handle(self, handler, headers, body):
        secret = self.secrets.get(handler.path)
        try:
            Webhook(secret).verify(body, headers)
            verified, error = True, ""
        except Exception as exc:  # noqa: BLE001 - recorded, the test asserts on it
            verified, error = False, f"{exc.__class__.__name__}: {exc}"
        with self.lock:
            answer = self.scripts[handler.path].popleft() if self.scripts[handler.path] else 200
            answer = answer if verified or answer in (HANG, DROP) else 401
            self.received.append(Received(handler.path, headers, body, verified, error, answer))
            self.in_flight += 1
            self.arrived.notify_all()
        try:
            if answer == DROP:
                handler.close_connection = True  # taken, then the connection drops: no answer
                return
            if answer == HANG:
                self.release.wait(60)
                answer = 200
            status = answer if verified else 401
            with self.lock:
                if 200 <= status < 300 and headers["webhook-id"] not in self.accepted_ids:
                    self.accepted_ids.append(headers["webhook-id"])
            handler.send_response(status)
            handler.send_header("Content-Length", "2")
            handler.end_headers()
            handler.wfile.write(b"{}")
        except ConnectionError:
            pass  # the client gave up on a hung answer and closed its end
        finally:
            with self.lock:
                self.in_flight -= 1

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
