"""The HTTP transport under the twilio client: urllib3's thread-safe connection pool.

The twilio client takes any twilio.http.HttpClient; its own, TwilioHttpClient, goes through
requests, whose request preparation (settings merging, cookie jar, hooks) cost a busy worker
more CPU than the HTTP exchange itself. This one sends what TwilioHttpClient sends (form or
JSON bodies, query parameters, basic auth, one timeout, no redirects, no retries) and logs to
the same logger; the twilio client above it (resources, errors) is unchanged. Its timeout bounds
the whole exchange, not each read: a server that trickles its answer a byte at a time is cut
off when the timeout is up."""

import base64
import json
import logging
import socket
import threading
import urllib.request
from urllib.parse import urlencode, urlsplit

import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response

logger = logging.getLogger("twilio.http_client")

JSON_TYPES = ("application/json", "application/scim+json")
# Connections kept per host: one per send thread, and then some (requests' default is 10).
POOL_SIZE = 32


class PooledHttpClient(HttpClient):
    def __init__(self, timeout=None, proxies=None):
        super().__init__(logger, is_async=False, timeout=timeout)
        # Proxy settings are read once (urllib.request.getproxies() by default), not per request.
        self.proxies = urllib.request.getproxies() if proxies is None else proxies
        self._pools = {}

    def request(
        self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False
    ):
        timeout = self.timeout if timeout is None else timeout
        if timeout is not None and timeout <= 0:
            raise ValueError(timeout)
        headers = dict(headers or {})
        body = None
        if data is not None and headers.get("Content-Type") in JSON_TYPES:
            body = json.dumps(data)
        elif data:
            body = _form(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if params:
            url = f"{url}?{_form(params)}"
        self.log_request({"method": method.upper(), "url": url, "params": None, "headers": headers})
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        with _Deadline(timeout, url):
            answer = self._pool(urlsplit(url).scheme).request(
                method.upper(),
                url,
                body=body,
                headers=headers,
                timeout=timeout,
                redirect=allow_redirects,
                retries=False,
            )
        self.log_response(answer.status, answer)
        return Response(answer.status, answer.data.decode("utf-8", errors="replace"), answer.headers)

    def _pool(self, scheme):
        """One pool manager per URL scheme, through its proxy if one is set (made on first use,
        so a prefork child makes its own)."""
        if scheme not in self._pools:
            proxy = self.proxies.get(scheme)
            options = {"maxsize": POOL_SIZE, "block": False}
            made = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
            made.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
            self._pools.setdefault(scheme, made)  # two threads racing here keep the same one
        return self._pools[scheme]


def _form(values):
    """URL-encoded as requests encodes a dict: lists repeat their key, None values are left out."""
    pairs = []
    for key, value in values.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None:
                pairs.append((key, item))
    return urlencode(pairs)


# The deadline of the request this thread is making, if any (the pool tells it its connection).
_current = threading.local()
# Seconds between looks for the socket of a connection still connecting when its deadline came.
_DEADLINE_RETRY = 0.05


class _Deadline:
    """Ends a request that is not answered in full within `seconds` (urllib3's timeouts bound
    each connect and each read, not the whole): at the deadline the connection's socket is shut,
    and the request fails with ReadTimeoutError, as one with no answer at all does."""

    def __init__(self, seconds, url):
        self.seconds, self.url = seconds, url
        self.connection = None
        self.expired = self.done = False
        self._lock = threading.Lock()
        self._timer = None

    def __enter__(self):
        if self.seconds is not None:
            _current.deadline = self
            self._arm(self.seconds)
        return self

    def __exit__(self, kind, exc, traceback):
        with self._lock:
            self.done = True
            if self._timer:
                self._timer.cancel()
        _current.deadline = None
        if exc is not None and self.expired and isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
            raise urllib3.exceptions.ReadTimeoutError(
                None, self.url, f"no complete answer within {self.seconds} s"
            ) from exc
        return False

    def _arm(self, seconds):
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self):
        with self._lock:
            if self.done:
                return
            self.expired = True
            sock = getattr(self.connection, "sock", None)
            if sock is None:
                self._arm(_DEADLINE_RETRY)  # not connected yet (the connect has its own timeout)
                return
        try:
            sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns; the pool drops the connection
        except OSError:
            pass  # closed meanwhile


class _WatchedPool:
    """A connection pool that tells the request's deadline which connection it got."""

    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout)
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.connection = connection
        return connection


class _WatchedHTTPPool(_WatchedPool, urllib3.HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
    pass
