"""The provider connections of one deliver() (one batch, or a sweep's batches), owned by it.

Each send thread opens its own connection to a channel's provider on its first send and reuses
it for the rest of the deliver(); after an error the connection is dropped, and the thread's
next send opens a fresh one, as it does after a connection sat unused for IDLE_SECONDS. Every
connection is closed when the deliver() ends."""

import contextlib
import threading
import time

# Seconds a connection may sit unused and still be reused: SMTP servers close idle connections
# (RFC 5321 allows 5 minutes, some providers far less), and a sweep's thread may spend a while
# on text messages or waits between two emails.
IDLE_SECONDS = 10.0


class SendSession:
    def __init__(self):
        self._local = threading.local()
        self._opened = []
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def send(self, channel, notification, message):
        """Hand the message to the channel on this thread's connection to it."""
        held = self._local.__dict__.setdefault("connections", {})
        if channel.name in held and time.monotonic() - held[channel.name][1] > IDLE_SECONDS:
            _close(held.pop(channel.name)[0])
        if channel.name not in held:
            connection = channel.connect()
            if connection is not None:
                with self._lock:
                    self._opened.append(connection)
            held[channel.name] = (connection, time.monotonic())
        connection = held[channel.name][0]
        try:
            provider_message_id = channel.send(notification, message, connection)
        except BaseException:
            # The connection's state is unknown after an error: the next send opens another.
            _close(held.pop(channel.name)[0])
            raise
        held[channel.name] = (connection, time.monotonic())
        return provider_message_id

    def close(self):
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            _close(connection)


def _close(connection):
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()
