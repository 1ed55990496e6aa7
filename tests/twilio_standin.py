"""A stand-in for Twilio's REST API on loopback, for the real twilio client to talk to.

It answers POST /2010-04-01/Accounts/{sid}/Messages.json as Twilio does: 201 with a message
resource, or a Twilio error body. Twilio's documented magic test numbers fail as they do
there, a script per recipient can queue other answers (5xx, 429, slow answers), and every
request is recorded for the tests to assert on."""

import base64
import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")

# https://www.twilio.com/docs/iam/test-credentials: magic "To" numbers and their errors.
MAGIC_NUMBERS = {
    "+15005550001": (400, 21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (400, 21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (400, 21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (400, 21614, "'To' number is not a valid mobile number"),
}


@dataclass
class RecordedRequest:
    path: str
    form: dict
    account_sid: str
    at: float = field(default_factory=time.monotonic)
    received_at: float = field(default_factory=time.time)  # wall clock, to compare with database times

    @property
    def to(self):
        return self.form.get("To", "")

    @property
    def body(self):
        return self.form.get("Body", "")


class TwilioStandIn:
    """Answers per recipient: a queued script entry first, then the magic numbers, then 201.

    Script entries: an HTTP status (201, 429, 500, 503...), ("error", status, code),
    ("slow", seconds) which sleeps before answering 201, or "drop": the message is accepted and
    the connection closed without an answer. script_lookups(to, ...) queues statuses for the
    next message-list requests about a recipient (an error instead of the list); clock_skew (seconds, negative when
    Twilio's clock is behind ours) shifts the date_created of the messages it accepts."""

    def __init__(self, account_sid="AC" + "0" * 32, auth_token="standin-token"):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests = []
        self.accepted = []  # message resources, as Twilio would list them
        self.lookups = []  # the filters of each message-list request
        self._scripts = defaultdict(deque)
        self._lookup_scripts = defaultdict(deque)
        self.clock_skew = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, to, *answers):
        with self._lock:
            self._scripts[to].extend(answers)

    def script_lookups(self, to, *statuses):
        with self._lock:
            self._lookup_scripts[to].extend(statuses)

    def reset(self):
        with self._lock:
            self.requests.clear()
            self.accepted.clear()
            self.lookups.clear()
            self._scripts.clear()
            self._lookup_scripts.clear()
            self.clock_skew = 0

    def sent_to(self, to):
        return [r for r in self.requests if r.to == to]

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def _next_answer(self, to):
        with self._lock:
            if self._scripts[to]:
                return self._scripts[to].popleft()
        if to.removeprefix("whatsapp:") in MAGIC_NUMBERS:
            status, code, message = MAGIC_NUMBERS[to.removeprefix("whatsapp:")]
            return ("error", status, code, message)
        return 201

    def _handler_class(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                match = MESSAGES_PATH.match(self.path)
                if not match:
                    return self._reply(404, _error(404, 20404, "The requested resource was not found"))
                if not self._authorised(match["sid"]):
                    return self._reply(401, _error(401, 20003, "Authenticate"))
                with standin._lock:
                    standin.requests.append(RecordedRequest(self.path, form, match["sid"]))
                answer = standin._next_answer(form.get("To", ""))
                if answer in (201, "drop") or (isinstance(answer, tuple) and answer[0] == "slow"):
                    # Accepted before answering: a client that stops waiting loses only the answer.
                    message = _message(match["sid"], form, standin.clock_skew)
                    with standin._lock:
                        standin.accepted.append(message)
                    if answer == "drop":
                        self.close_connection = True
                        return None
                    if answer != 201:
                        time.sleep(answer[1])
                    return self._reply(201, message)
                if isinstance(answer, tuple):
                    _, status, code, *message = answer
                    return self._reply(status, _error(status, code, message[0] if message else "Error"))
                return self._reply(answer, _error(answer, 20429 if answer == 429 else 20500, "Service error"))

            def do_GET(self):
                """The message list, newest first, filtered by To and From as Twilio does."""
                path, _, query = self.path.partition("?")
                match = MESSAGES_PATH.match(path)
                if not match:
                    return self._reply(404, _error(404, 20404, "The requested resource was not found"))
                if not self._authorised(match["sid"]):
                    return self._reply(401, _error(401, 20003, "Authenticate"))
                filters = {k: v[0] for k, v in parse_qs(query).items() if k in ("To", "From")}
                with standin._lock:
                    standin.lookups.append(filters)
                    script = standin._lookup_scripts[filters.get("To", "")]
                    failure = script.popleft() if script else None
                if failure:
                    return self._reply(failure, _error(failure, 20500, "Service error"))
                with standin._lock:
                    found = [
                        m for m in reversed(standin.accepted) if all(m[k.lower()] == v for k, v in filters.items())
                    ]
                page_size = int(parse_qs(query).get("PageSize", ["50"])[0])
                return self._reply(
                    200,
                    {
                        "messages": found[:page_size],
                        "page": 0,
                        "page_size": page_size,
                        "start": 0,
                        "end": max(0, min(len(found), page_size) - 1),
                        "uri": self.path,
                        "first_page_uri": self.path,
                        "next_page_uri": None,
                        "previous_page_uri": None,
                    },
                )

            def _authorised(self, sid):
                expected = base64.b64encode(f"{standin.account_sid}:{standin.auth_token}".encode()).decode()
                return sid == standin.account_sid and self.headers.get("Authorization") == f"Basic {expected}"

            def _reply(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

        return Handler


def _message(account_sid, form, clock_skew=0):
    sid = "SM" + uuid.uuid4().hex
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(time.time() + clock_skew))
    return {
        "sid": sid,
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "status": "queued",
        "to": form.get("To"),
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
    }


def _error(status, code, message):
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
