"""A stand-in for Twilio's REST API on loopback, for the real twilio client to talk to.

It answers POST /2010-04-01/Accounts/{sid}/Messages.json as Twilio does: 201 with a message
resource, or a Twilio error body. Twilio's documented magic test numbers fail as they do
there, a script per recipient can queue other answers (5xx, 429, slow answers, receipts that
fail later), and every request is recorded for the tests to assert on.

It behaves as Twilio does where the real one is not polite: a WhatsApp message goes by an
approved Content Template (an unknown ContentSid is refused with 21655), free-form WhatsApp
text outside the 24 hours after the patient's last message is accepted and then failed by a
status callback with 63016, and an SMS number that texted STOP is refused with 21610 until it
texts START. Its status callbacks and the patients' messages (send_inbound) reach our webhooks
signed as Twilio signs them (tests/twilio_standin_webhooks.py)."""

import base64
import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

from tests.twilio_standin_webhooks import (
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    WebhookPoster,
    idempotency_header,
    inbound_params,
    status_params,
)

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")
# Twilio's Content API (content.twilio.com): one Content Template by its sid.
CONTENT_PATH = re.compile(r"^/v1/Content/(?P<sid>HX\w+)$")
# The message list's filters (DateSent and its inequalities compare whole days, as documented).
LIST_FILTERS = ("To", "From", "DateSent", "DateSent>", "DateSent<")

# https://www.twilio.com/docs/iam/test-credentials: magic "To" numbers and their errors.
MAGIC_NUMBERS = {
    "+15005550001": (400, 21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (400, 21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (400, 21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (400, 21614, "'To' number is not a valid mobile number"),
}
WHATSAPP_SESSION_SECONDS = 24 * 3600


@dataclass
class RecordedRequest:
    path: str
    form: dict
    account_sid: str
    at: float = field(default_factory=time.monotonic)
    received_at: float = field(default_factory=time.time)  # wall clock, to compare with database times
    answer: object = None  # what the stand-in answered (a script entry's form, or 201)

    @property
    def to(self):
        return self.form.get("To", "")

    @property
    def body(self):
        return self.form.get("Body", "")


class _Server(ThreadingHTTPServer):
    # Twilio takes a burst of connections at once; socketserver's backlog of 5 refused some of a
    # worker's concurrent sends (its processes' send threads), with connect timeouts and resets
    # that no real Twilio gives.
    request_queue_size = 128
    daemon_threads = True


class TwilioStandIn:
    """Answers per recipient: a queued script entry first, then the magic numbers, then 201.

    Script entries: an HTTP status (201, 429, 500, 503...), ("error", status, code),
    ("slow", seconds) which sleeps before answering 201, ("trickle", seconds) which answers 201
    one byte of the body every that many seconds, "drop": the message is accepted and the
    connection closed without an answer, or "late": the connection is closed without an answer
    and the message is accepted only when land_late() is called (Twilio taking it after the
    client gave up, and after a look-up may have missed it). script_lookups(to, ...) queues
    statuses for the next message-list requests about a recipient (an error instead of the
    list); held_in_queue keeps the messages it accepts queued at Twilio (no date_sent yet, so a
    DateSent filter does not list them) until release_queue(); clock_skew (seconds, negative when
    Twilio's clock is behind ours) shifts the date_created of the messages it accepts.
    ("undelivered", code) and ("failed", code) answer 201 and then post "sent" and that receipt
    with that error code, receipt_delay seconds apart, to the message's StatusCallback."""

    receipt_delay = 0.2

    def __init__(self, account_sid="AC" + "0" * 32, auth_token="standin-token"):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests = []
        self.accepted = []  # message resources, as Twilio would list them
        self.lookups = []  # the filters of each message-list request
        self._scripts = defaultdict(deque)
        self._lookup_scripts = defaultdict(deque)
        self.clock_skew = 0
        self.held_in_queue = False
        # Twilio's clock (seconds since the epoch): a simulation sets its own virtual clock.
        self.clock = time.time
        self.late = []  # (account sid, form) of messages taken but not yet accepted ("late")
        self.taken_late = []  # the form of every message taken "late", landed or not
        self._lock = threading.Lock()
        self.webhooks = WebhookPoster(auth_token)
        # ContentSid -> its text with {{1}}… placeholders; approved once, kept by reset().
        self.content_templates = {}
        self.whatsapp_sessions = {}  # whatsapp:+number -> when it last wrote to us
        self.sms_opted_out = set()  # (patient's number, our number) after STOP
        self._status_callbacks = {}  # MessageSid -> its StatusCallback URL
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
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
            self.held_in_queue = False
            self.clock = time.time
            self.late.clear()
            self.taken_late.clear()
            self.whatsapp_sessions.clear()
            self.sms_opted_out.clear()
            self._status_callbacks.clear()
        self.webhooks.reset()

    def reset_scripts(self):
        """Every queued answer dropped: Twilio well again."""
        with self._lock:
            self._scripts.clear()
            self._lookup_scripts.clear()

    def add_content_template(self, text):
        """An approved Content Template; returns its ContentSid."""
        sid = "HX" + uuid.uuid4().hex
        self.content_templates[sid] = text
        return sid

    def post_status(self, message_sid, status, error_code=None, token=None):
        """Post a status callback for an accepted message now; returns the Posted record. The
        same token again is Twilio retrying the same callback."""
        message = next(m for m in self.accepted if m["sid"] == message_sid)
        params = status_params(self.account_sid, message, status, error_code)
        return self.webhooks.post(self._status_callbacks[message_sid], params, idempotency_header(token))

    def send_inbound(self, url, from_, body, to):
        """A patient's message to our number `to`, posted to our inbound webhook as Twilio posts
        it; returns the Posted record (its body is our TwiML answer). A WhatsApp message opens
        the 24-hour session; an SMS opt-out word blocks our number's messages to the patient's
        and an opt-in word lifts it, as Twilio's Advanced Opt-Out does."""
        self.note_inbound(from_, body, to)
        return self.webhooks.post(url, inbound_params(self.account_sid, from_, to, body), idempotency_header())

    def note_inbound(self, from_, body, to):
        """What Twilio itself does with a patient's message before posting it to us: a WhatsApp
        message opens the session, SMS opt-out and opt-in words block or unblock our number."""
        word = body.strip().upper()
        with self._lock:
            if from_.startswith("whatsapp:"):
                self.whatsapp_sessions[from_] = self.clock()
            elif word in OPT_OUT_WORDS:
                self.sms_opted_out.add((from_, to))
            elif word in OPT_IN_WORDS:
                self.sms_opted_out.discard((from_, to))

    def land_late(self):
        """Accept now the messages taken with a "late" answer; returns them."""
        with self._lock:
            late, self.late = self.late, []
        return [self._accept(account_sid, form) for account_sid, form in late]

    def callback_of(self, message_sid):
        """The StatusCallback URL the message was sent with ('' when none)."""
        with self._lock:
            return self._status_callbacks.get(message_sid, "")

    def sent_to(self, to):
        return [r for r in self.requests if r.to == to]

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def _next_answer(self, form):
        to = form.get("To", "")
        with self._lock:
            if self._scripts[to]:
                return self._scripts[to].popleft()
            if (to, form.get("From", "")) in self.sms_opted_out:
                return ("error", 400, 21610, "Attempt to send to unsubscribed recipient")
        if to.removeprefix("whatsapp:") in MAGIC_NUMBERS:
            status, code, message = MAGIC_NUMBERS[to.removeprefix("whatsapp:")]
            return ("error", status, code, message)
        if "ContentSid" in form:
            return self._content_answer(form)
        if to.startswith("whatsapp:") and not self._session_open(to):
            return ("failed", 63016)
        return 201

    def _content_answer(self, form):
        """Twilio's checks of a Content Template message: a known ContentSid, JSON variables."""
        if form["ContentSid"] not in self.content_templates:
            return ("error", 400, 21655, "The ContentSid is Invalid")
        try:
            variables = json.loads(form.get("ContentVariables") or "{}")
        except ValueError:
            variables = None
        if not isinstance(variables, dict):
            return ("error", 400, 21656, "The ContentVariables Parameter is invalid")
        return 201

    def _session_open(self, to):
        last = self.whatsapp_sessions.get(to)
        return last is not None and self.clock() - last < WHATSAPP_SESSION_SECONDS

    def _accept(self, account_sid, form, receipts=()):
        """Accept a message: keep it for the list, and post its later receipts, if any."""
        message = _message(account_sid, form, self._content_body(form), self.clock() + self.clock_skew)
        if self.held_in_queue:
            message["date_sent"] = None
        with self._lock:
            self.accepted.append(message)
            if form.get("StatusCallback"):
                self._status_callbacks[message["sid"]] = form["StatusCallback"]
        for n, (status, error_code) in enumerate(receipts, 1):
            if form.get("StatusCallback"):
                params = status_params(account_sid, message, status, error_code)
                self.webhooks.post_later(n * self.receipt_delay, form["StatusCallback"], params, idempotency_header())
        return message

    def _content_body(self, form):
        """The text Twilio lists for a message: its body, or its template with the variables in."""
        if "ContentSid" not in form:
            return form.get("Body", "")
        text = self.content_templates[form["ContentSid"]]
        for key, value in json.loads(form.get("ContentVariables") or "{}").items():
            text = text.replace("{{" + key + "}}", str(value))
        return text

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
                recorded = RecordedRequest(self.path, form, match["sid"])
                with standin._lock:
                    standin.requests.append(recorded)
                answer = recorded.answer = standin._next_answer(form)
                if isinstance(answer, tuple) and answer[0] in ("undelivered", "failed"):
                    # Accepted now, failed later: Twilio's answer says nothing, a receipt does.
                    receipts = [("sent", None), answer] if answer[0] == "undelivered" else [answer]
                    return self._reply(201, standin._accept(match["sid"], form, receipts))
                if isinstance(answer, tuple) and answer[0] == "trickle":
                    # Accepted, and answered one byte every answer[1] seconds.
                    return self._trickle(answer[1], standin._accept(match["sid"], form))
                if answer == "late":
                    # Taken, not yet accepted: no answer now, the message appears at land_late().
                    with standin._lock:
                        standin.late.append((match["sid"], form))
                        standin.taken_late.append(form)
                    self.close_connection = True
                    return None
                if answer in (201, "drop") or (isinstance(answer, tuple) and answer[0] == "slow"):
                    # Accepted before answering: a client that stops waiting loses only the answer.
                    message = standin._accept(match["sid"], form)
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
                """The message list, newest first, filtered by To, From and DateSent as Twilio
                does, a page at a time; or a Content Template."""
                path, _, query = self.path.partition("?")
                content = CONTENT_PATH.match(path)
                if content:
                    return self._content(content["sid"])
                match = MESSAGES_PATH.match(path)
                if not match:
                    return self._reply(404, _error(404, 20404, "The requested resource was not found"))
                if not self._authorised(match["sid"]):
                    return self._reply(401, _error(401, 20003, "Authenticate"))
                params = {k: v[0] for k, v in parse_qs(query).items()}
                filters = {k: v for k, v in params.items() if k in LIST_FILTERS}
                with standin._lock:
                    standin.lookups.append(filters)
                    script = standin._lookup_scripts[filters.get("To", "")]
                    failure = script.popleft() if script else None
                if failure:
                    return self._reply(failure, _error(failure, 20500, "Service error"))
                with standin._lock:
                    found = [m for m in reversed(standin.accepted) if _listed(m, filters)]
                page_size = min(int(params.get("PageSize", "50")), 1000)
                page = int(params.get("Page", "0"))
                if params.get("PageToken"):
                    # The token names the last message of the page before: messages accepted
                    # since the first page do not shift the later pages.
                    after = params["PageToken"].removeprefix("PA")
                    found = found[next((n + 1 for n, m in enumerate(found) if m["sid"] == after), len(found)) :]
                else:
                    found = found[page * page_size :]
                messages = found[:page_size]
                next_page_uri = None
                if len(found) > page_size:
                    following = {**params, "Page": str(page + 1), "PageToken": "PA" + messages[-1]["sid"]}
                    next_page_uri = f"{path}?{urlencode(following)}"
                return self._reply(
                    200,
                    {
                        "messages": messages,
                        "page": page,
                        "page_size": page_size,
                        "start": page * page_size,
                        "end": page * page_size + max(0, len(messages) - 1),
                        "uri": self.path,
                        "first_page_uri": f"{path}?{urlencode({**filters, 'PageSize': page_size, 'Page': 0})}",
                        "next_page_uri": next_page_uri,
                        "previous_page_uri": None,
                    },
                )

            def _content(self, content_sid):
                """A Content Template as Twilio's Content API answers it, its text as a twilio/text."""
                expected = base64.b64encode(f"{standin.account_sid}:{standin.auth_token}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    return self._reply(401, _error(401, 20003, "Authenticate"))
                if content_sid not in standin.content_templates:
                    return self._reply(404, _error(404, 20404, "The requested resource was not found"))
                return self._reply(
                    200,
                    {
                        "sid": content_sid,
                        "account_sid": standin.account_sid,
                        "friendly_name": content_sid,
                        "language": "en",
                        "variables": {},
                        "types": {"twilio/text": {"body": standin.content_templates[content_sid]}},
                        "url": f"https://content.twilio.com/v1/Content/{content_sid}",
                        "links": {},
                        "date_created": "2026-01-01T00:00:00Z",
                        "date_updated": "2026-01-01T00:00:00Z",
                    },
                )

            def _authorised(self, sid):
                expected = base64.b64encode(f"{standin.account_sid}:{standin.auth_token}".encode()).decode()
                return sid == standin.account_sid and self.headers.get("Authorization") == f"Basic {expected}"

            def _trickle(self, seconds_per_byte, payload):
                """A 201 whose headers come at once and whose body comes a byte at a time, each
                within any read timeout, until the client hangs up."""
                body = json.dumps(payload).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.close_connection = True
                try:
                    for n in range(len(body)):
                        self.wfile.write(body[n : n + 1])
                        self.wfile.flush()
                        time.sleep(seconds_per_byte)
                except OSError:
                    pass  # the client gave up waiting

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


def _message(account_sid, form, body, at):
    sid = "SM" + uuid.uuid4().hex
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(at))
    return {
        "sid": sid,
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_updated": now,
        "date_sent": now,  # the stand-in hands a message to the carrier as it accepts it
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


def _listed(message, filters):
    """Whether the message list shows this message under these filters: To and From exactly,
    DateSent by the day of date_sent (in GMT) whatever time the filter names, as documented."""
    for key, value in filters.items():
        if key in ("To", "From"):
            if message[key.lower()] != value:
                return False
            continue
        if not message["date_sent"]:
            return False
        day = parsedate_to_datetime(message["date_sent"]).date().isoformat()
        wanted = value[:10]
        if not {"DateSent": day == wanted, "DateSent>": day >= wanted, "DateSent<": day <= wanted}[key]:
            return False
    return True


def _error(status, code, message):
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
