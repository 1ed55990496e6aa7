"""A claimed send's outcome, and writing outcomes: only while the claim that sent still holds
the row (its token), in one statement for a group, with an attempt row each.

The models import this module (a row's outcome() is an Outcome), so it reads their classes
from Django's registry rather than importing them."""

from django.apps import apps
from django.db import connection, transaction

from notifications.outbox.raw_sql import statements, storable
from notifications.outbox.states import NotificationStatus


def _rows():
    return apps.get_model("notifications", "Notification")


def _attempts():
    return apps.get_model("notifications", "NotificationAttempt")


class Outcome:
    """What became of one claimed send, before it is written."""

    def __init__(self, notification, fields, now):
        self.notification, self.fields, self.now = notification, fields, now

    def record(self):
        return bool(record_outcomes([self]))


@transaction.atomic(savepoint=False)  # in the caller's transaction when there is one
def record_outcomes(outcomes):
    """Write the outcomes of claimed sends: one locking SELECT finds the rows still held by
    these claims (a row whose lease expired and was claimed again is not ours to write), one
    batch of UPDATEs by primary key writes them, one INSERT adds their attempts to the
    history. Returns the ids won. A row deleted meanwhile (its appointment deleted in the
    admin) gets no attempt: one would fail the whole write, the other rows' outcomes with it."""
    if not outcomes:
        return set()
    present, won = _still_held(outcomes)
    winners = [o for o in outcomes if o.notification.pk in won]
    _honour_erasures(winners)
    shapes = {}
    for outcome in winners:
        shapes.setdefault(tuple(sorted(outcome.fields)), []).append(outcome)
    for columns, group in shapes.items():
        _update_each(columns, group)
    _insert_attempts(
        [o for o in outcomes if o.notification.pk in present and o.fields["status"] != NotificationStatus.PENDING]
    )
    for o in winners:
        for name, value in o.fields.items():
            setattr(o.notification, name, value)
    return won


# An outcome write runs every few sends, so its locking SELECT and its UPDATE are raw SQL: built
# by the ORM, each cost more CPU than the sends whose outcomes it wrote (docs/PERFORMANCE.md).
# Its attempt rows are the ORM's bulk_create: a raw INSERT saved them no tenth of a send's CPU.
def _still_held(outcomes):
    """The ids of these outcomes' rows that are still there, and of those that their claims
    still hold, all locked until the transaction ends (FOR UPDATE, where the database has it:
    a row locked cannot be deleted before its attempt is written)."""
    token = _rows()._meta.get_field("claim_token")
    ids = [o.notification.pk for o in outcomes]
    tokens = {token.get_db_prep_value(o.notification.claim_token, connection) for o in outcomes}
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('id')}, {quote('status')}, {quote('claim_token')} FROM {quote(_rows()._meta.db_table)} "
        f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(ids))})"
    )
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        rows = cursor.fetchall()
    held = {pk for pk, status, claim_token in rows if status == NotificationStatus.SENDING and claim_token in tokens}
    return {pk for pk, _, _ in rows}, held


PERSONAL_OUTCOME_FIELDS = ("rendered_subject", "rendered_text", "rendered_html", "last_error")


def _honour_erasures(outcomes):
    """A send in flight when its patient was erased writes its outcome without the message's copy
    or the error's text (either may quote the patient). Read after _still_held's lock, in a
    statement of its own, so it sees an erasure that committed while the lock was awaited; an
    erasure that comes later blanks what this write put."""
    personal = [o for o in outcomes if "rendered_text" in o.fields or o.fields.get("last_error")]
    if not personal:
        return
    erased = set(
        _rows()
        .objects.filter(pk__in=[o.notification.pk for o in personal], patient__erased_at__isnull=False)
        .values_list("pk", flat=True)
    )
    for o in personal:
        if o.notification.pk in erased:
            o.fields.update({name: "" for name in PERSONAL_OUTCOME_FIELDS if name in o.fields})


def _update_each(columns, outcomes):
    """One UPDATE for every outcome that sets these columns: each row's values in a VALUES list,
    joined by primary key (an UPDATE a row cost the database a parse and a plan each; update()
    with a CASE per row and column spent more CPU building expressions than the sends). The
    rows are locked by the caller."""
    fields = [_rows()._meta.get_field(name) for name in (*columns, "updated_at")]
    quote = connection.ops.quote_name
    table = quote(_rows()._meta.db_table)
    # A VALUES list's columns are column1, column2… on PostgreSQL and SQLite alike. PostgreSQL
    # types a column of quoted literals (or NULLs) as text: its values are cast to the field's type.
    if connection.vendor == "postgresql":
        values = [
            f"CAST(v.column{n} AS {field.db_type(connection).split('(')[0]})" for n, field in enumerate(fields, 2)
        ]
    else:
        values = [f"v.column{n}" for n, _ in enumerate(fields, 2)]
    assignments = ", ".join(f"{quote(field.column)} = {value}" for field, value in zip(fields, values, strict=True))
    rows = []
    for o in outcomes:
        values = {**o.fields, "updated_at": o.now}
        rows.append(
            [o.notification.pk, *(field.get_db_prep_save(storable(values[field.name]), connection) for field in fields)]
        )
    placeholders = f"({', '.join(['%s'] * (len(fields) + 1))})"
    with connection.cursor() as cursor:
        for chunk in statements(rows, len(fields) + 1):
            cursor.execute(
                f"UPDATE {table} SET {assignments}, {quote('claim_token')} = NULL "
                f"FROM (VALUES {', '.join([placeholders] * len(chunk))}) AS v WHERE {table}.{quote('id')} = v.column1",
                [value for row in chunk for value in row],
            )


def _insert_attempts(outcomes):
    """The history rows of these attempts, their values sanitized (storable)."""
    if not outcomes:
        return
    model = _attempts()
    model.objects.bulk_create(
        model(
            notification_id=o.notification.pk,
            number=o.notification.attempts,
            started_at=o.notification.claimed_at,
            finished_at=o.now,
            outcome=o.fields["status"],
            error=storable(o.fields["last_error"]),
            error_code=storable(o.fields["error_code"]),
            provider_message_id=storable(o.fields.get("provider_message_id", "")),
        )
        for o in outcomes
    )
