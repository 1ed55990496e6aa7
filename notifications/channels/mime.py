"""Our emails as the SMTP server receives them (RFC 5322 and MIME, lines ending CRLF), written
straight from the Django message the email channel built.

What an email says is decided once, in that message; this module only writes it, for a small
part of the CPU of Django's MIME classes (docs/PERFORMANCE.md). What it writes is 7-bit clean,
its lines at most 78 characters but for a long unbroken word: a header is RFC 2047 encoded-words
when not ASCII, a body 7bit when ASCII in lines of at most 998, else quoted-printable."""

import binascii
import functools
import re
import secrets
import string
from email.utils import formatdate

from django.conf import settings
from django.core.mail.message import BadHeaderError, sanitize_address

# An ASCII address Django would send unchanged; any other goes through Django's sanitize_address.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
# The characters an RFC 2047 "Q" encoded-word may carry as themselves anywhere (section 5).
_Q_AS_IS = frozenset(string.ascii_letters + string.digits + "!*+-/")
_CONTINUATIONS = ("=8", "=9", "=A", "=B")  # UTF-8 bytes 0x80 to 0xBF, "Q" encoded
_LINE = 78


def envelope_and_bytes(email):
    """(sender, recipients, message bytes) of a Django EmailMultiAlternatives of ours: subject,
    text body, text alternatives, extra headers, one or more To addresses, nothing else."""
    sender = _address(email.from_email)
    recipients = [_address(address) for address in email.to]
    head = [
        _folded("From:", sender),
        _folded("To:", ", ".join(recipients)),
        _header("Subject", email.subject),
        f"Date: {formatdate(localtime=settings.EMAIL_USE_LOCALTIME)}",
        *(_header(name, value) for name, value in email.extra_headers.items()),
        "MIME-Version: 1.0",
    ]
    parts = [("text/plain", email.body), *((mimetype, content) for content, mimetype in email.alternatives)]
    if len(parts) == 1:
        body = _part(*parts[0])
    else:
        boundary = f"=={secrets.token_hex(16)}=="
        head.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"')
        separator = f"\r\n--{boundary}\r\n".encode()
        body = separator + separator.join(_part(*part) for part in parts) + f"\r\n--{boundary}--\r\n".encode()
    return sender, recipients, "\r\n".join(head).encode() + b"\r\n" + body


@functools.lru_cache(maxsize=256)
def _address(address):
    """The address as Django would send it, on one line (a header folds it where it needs)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return sanitize_address(address, "utf-8").replace("\n", "")


def _header(name, value):
    if "\n" in value or "\r" in value:
        raise BadHeaderError(f"Header values can't contain newlines (got {value!r} for header {name!r})")
    # As encoded-words too: text a reader would take for one, or whose leading space it would drop.
    if value.isascii() and "=?" not in value and not value.startswith((" ", "\t")):
        return _folded(f"{name}:", value)
    return f"{name}: " + "\r\n ".join(_encoded_words(value))


def _folded(head, value):
    """head and value, folded before a space wherever a line would grow past 78 characters."""
    if len(head) + 1 + len(value) <= _LINE:
        return f"{head} {value}"
    lines, line = [], head
    for word in value.split(" "):
        if word and line != head and len(line) + 1 + len(word) > _LINE:
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return "\r\n".join(lines)


def _encoded_words(text):
    """The text as UTF-8 "Q" encoded-words, each of whole characters and short enough (68) that
    its line, even a Subject's first, stays within 78. Not email.header.Header's: that costs
    more than all the rest of the message."""
    encoded, words = text.translate(_Q), []
    while len(encoded) > 56:
        cut = 56
        # Back to a character's first byte: not inside an =XX, nor before a UTF-8 continuation's.
        while encoded[cut - 1] == "=" or encoded[cut - 2] == "=" or encoded.startswith(_CONTINUATIONS, cut):
            cut -= 1
        words.append(f"=?utf-8?q?{encoded[:cut]}?=")
        encoded = encoded[cut:]
    words.append(f"=?utf-8?q?{encoded}?=")
    return words


class _QTable(dict):
    """str.translate's table from a character to its "Q" encoding, filled as characters come
    (up to a bound: text in every script there is must not fill the memory)."""

    def __missing__(self, codepoint):
        char = chr(codepoint)
        piece = char if char in _Q_AS_IS else "_" if char == " " else "".join(f"={b:02X}" for b in char.encode())
        if len(self) < 10_000:
            self[codepoint] = piece
        return piece


_Q = _QTable()


def _part(mimetype, text):
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and max(map(len, text.split("\n"))) <= 998:
        encoding, data = "7bit", text.encode()
    else:
        encoding, data = "quoted-printable", binascii.b2a_qp(text.encode(), istext=True)
    return (
        f'Content-Type: {mimetype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'.encode()
        + data.replace(b"\n", b"\r\n")
    )
