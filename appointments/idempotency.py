"""Idempotent requests: an `Idempotency-Key` header makes a retried POST answer what the first
one answered, without doing the work twice.

A view method wrapped in `@idempotent` runs, when the request carries the header, inside one
transaction that first inserts the key's row (unique per user and key) and then does the work:

- The key is new: the row is inserted, the view runs, and a successful (2xx) answer is stored
  in the row, committed with the work itself. Any other answer, or an exception, leaves no row,
  so the client can correct the request and retry with the same key.
- The key was used before, with the same method, path and body: the stored answer is replayed
  (same status and JSON body, plus `Idempotent-Replayed: true`) and the view does not run.
- The key was used before for another request: 422 naming Idempotency-Key.
- Two requests with the same key race: on PostgreSQL the second's INSERT waits on the first's
  uncommitted row, then fails on the unique constraint once the first commits, and the second
  replays the first's answer (or, when the first stored nothing, goes ahead itself). On SQLite
  the settings begin every transaction IMMEDIATE, so the second waits for the first to commit.

Keys live IDEMPOTENCY_KEY_TTL_SECONDS (24 hours): an older key counts as new, and the daily beat
task `appointments.purge_idempotency_keys` deletes expired rows.
"""

import functools
import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from .models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = IdempotentRequest._meta.get_field("key").max_length

# For the views' @extend_schema(parameters=[...]); DRF's @action replaces a method's schema
# kwargs, so the decorator cannot add it itself.
KEY_PARAMETER = OpenApiParameter(
    HEADER,
    type={"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        f"At most {MAX_KEY_LENGTH} characters, unique per request you mean. A retry with the same key "
        "and the same body answers what the first request answered, without doing it twice; the same "
        "key with another body or path answers 422. Only successful answers are kept, for 24 hours."
    ),
)


def ttl():
    return timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)


def idempotent(view_method):
    """Make a DRF view method honour the Idempotency-Key header (see the module docstring)."""

    @functools.wraps(view_method)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            return view_method(view, request, *args, **kwargs)
        if not key or len(key) > MAX_KEY_LENGTH:
            return Response(
                {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} characters long."]}, status=status.HTTP_400_BAD_REQUEST
            )
        return _run_once(request, key, lambda: view_method(view, request, *args, **kwargs))

    return wrapper


def request_hash(data):
    """SHA-256 of the canonical JSON of a parsed body (keys sorted, no spaces)."""
    if hasattr(data, "lists"):  # a QueryDict (form or multipart body): every value, as lists
        data = {name: values for name, values in data.lists()}
    canonical = json.dumps(data, cls=JSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _run_once(request, key, call_view):
    fingerprint = {"method": request.method, "path": request.path, "request_hash": request_hash(request.data)}
    with transaction.atomic():
        # An expired key counts as new.
        IdempotentRequest.objects.filter(user=request.user, key=key, created_at__lte=timezone.now() - ttl()).delete()
        for _ in range(3):
            try:
                with transaction.atomic():  # a savepoint: a unique violation must not spoil the transaction
                    record = IdempotentRequest.objects.create(user=request.user, key=key, **fingerprint)
            except IntegrityError:
                # Another request with this key committed first (PostgreSQL made this INSERT wait for it).
                earlier = IdempotentRequest.objects.filter(user=request.user, key=key).first()
                if earlier is not None:
                    return _replay(earlier, fingerprint)
                continue  # deleted meanwhile (expired and purged): try to take the key again
            response = call_view()
            if status.is_success(response.status_code):
                record.status_code = response.status_code
                record.response_body = json.loads(json.dumps(response.data, cls=JSONEncoder))
                record.save(update_fields=["status_code", "response_body"])
            else:
                # Not stored: the client may fix the request and retry with the same key.
                record.delete()
            return response
    return _in_progress()  # pragma: no cover - the key kept vanishing under our feet


def _replay(earlier, fingerprint):
    if earlier.status_code is None:  # pragma: no cover - only ever seen inside its own transaction
        return _in_progress()
    if any(getattr(earlier, field) != value for field, value in fingerprint.items()):
        return Response(
            {
                HEADER: [
                    "This key was already used for a different request (another body, method or path). "
                    "Use a new key for a new request."
                ]
            },
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    response = Response(earlier.response_body, status=earlier.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def _in_progress():
    message = "A request with this key is in progress; retry shortly."
    return Response({HEADER: [message]}, status=status.HTTP_409_CONFLICT)


def purge_expired(now=None):
    """Delete the keys older than the TTL; returns how many went."""
    cutoff = (now or timezone.now()) - ttl()
    return IdempotentRequest.objects.filter(created_at__lte=cutoff).delete()[0]
