"""Statements of the hot paths in raw SQL, where the ORM's building of them cost more CPU than
the work they served (docs/PERFORMANCE.md, "Issue 26"): a claim's read-back and a booking's
planned rows (an outcome write's statements are beside record_outcomes, in outcomes.py); and
storable, which sanitizes every value the hot paths write, through raw SQL or the ORM."""

import functools
import re

from django.db import connections, router

# What PostgreSQL refuses in text and JSON: NUL, and lone surrogates (not UTF-8), which Python
# strings can hold (a template's stringformat:"c", a provider's answer).
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value):
    """The value as the database takes it: NUL dropped and lone surrogates made U+FFFD, in a
    string or anywhere in a JSON value; anything else as it is. One refused value would fail the
    whole statement, the rows of every other patient in it."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def insert_ignoring_conflicts(instances, returning=()):
    """INSERT these new instances of one model, skipping those a unique constraint refuses, and
    return the `returning` columns of the rows inserted. (bulk_create sends several rows to
    PostgreSQL as arrays, UNNEST, and quoting a JSON value inside an array cost more than the
    rest of a booking's planning.)"""
    if not instances:
        return []
    model = type(instances[0])
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    rows = [[field.pre_save(obj, True) for field in fields] for obj in instances]
    return insert(model, fields, rows, ignore_conflicts=True, returning=returning)


# Parameters one statement carries at most: PostgreSQL binds up to 65,535, SQLite 32,766.
MAX_PARAMETERS = 30_000


def statements(rows, width):
    """The rows in groups, one a statement, each row `width` parameters."""
    per_statement = max(1, MAX_PARAMETERS // width)
    return (rows[start : start + per_statement] for start in range(0, len(rows), per_statement))


def insert(model, fields, rows, ignore_conflicts=False, returning=()):
    """INSERT rows of one model (each the values of these fields) as one multi-row statement (a
    statement a row cost the database a parse and a plan each); with ignore_conflicts, a row a
    unique constraint refuses is skipped. Returns the `returning` columns of the rows inserted."""
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) VALUES "
    tail = (" ON CONFLICT DO NOTHING" if ignore_conflicts else "") + (
        f" RETURNING {', '.join(quote(model._meta.get_field(name).column) for name in returning)}" if returning else ""
    )
    placeholders = f"({', '.join(['%s'] * len(fields))})"
    prepared = [
        [field.get_db_prep_save(storable(value), connection) for field, value in zip(fields, row, strict=True)]
        for row in rows
    ]
    inserted = []
    with connection.cursor() as cursor:
        for chunk in statements(prepared, len(fields)):
            cursor.execute(head + ", ".join([placeholders] * len(chunk)) + tail, [v for row in chunk for v in row])
            if returning:
                inserted += cursor.fetchall()
    return inserted


def claimed_rows(model, token, claimed_at, status, using):
    """The rows the claim with this token holds (in this status, claimed at claimed_at), each with
    its appointment and the appointment's patient. Found through the partial index of rows in
    flight: the status is written into the statement, so SQLite too sees that the index serves it."""
    connection = connections[using]
    readers = _readers(model, using)
    sql = _select(model, using, status)
    fields = model._meta
    params = [
        fields.get_field("claimed_at").get_db_prep_value(claimed_at, connection),
        fields.get_field("claim_token").get_db_prep_value(token, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    rows = []
    for values in fetched:
        row, appointment, patient = (reader.build(values, connection) for reader in readers)
        appointment.patient = patient
        row.appointment = appointment
        rows.append(row)
    return rows


def _tables(model):
    appointment = model._meta.get_field("appointment").related_model
    return [(model, "t0"), (appointment, "t1"), (appointment._meta.get_field("patient").related_model, "t2")]


@functools.cache
def _select(model, using, status):
    quote = connections[using].ops.quote_name
    tables = _tables(model)
    (_, _), (appointment, _), (patient, _) = tables
    columns = ", ".join(f"{alias}.{quote(f.column)}" for m, alias in tables for f in m._meta.concrete_fields)

    def column(model, name):
        return quote(model._meta.get_field(name).column)

    return (
        f"SELECT {columns} FROM {quote(model._meta.db_table)} t0 "
        f"INNER JOIN {quote(appointment._meta.db_table)} t1 "
        f"ON t1.{column(appointment, 'id')} = t0.{column(model, 'appointment')} "
        f"INNER JOIN {quote(patient._meta.db_table)} t2 ON t2.{column(patient, 'id')} = t1.{column(appointment, 'patient')} "
        f"WHERE t0.{column(model, 'status')} = '{status}' "
        f"AND t0.{column(model, 'claimed_at')} = %s AND t0.{column(model, 'claim_token')} = %s"
    )


@functools.cache
def _readers(model, using):
    readers, offset = [], 0
    for table, alias in _tables(model):
        readers.append(_Reader(table, alias, connections[using], offset))
        offset += len(readers[-1].names)
    return readers


class _Reader:
    """Builds one model's instances from its slice of a joined row, as the ORM's compiler does:
    the backend's converters and the field's own (a JSON field's decoding, SQLite's datetimes),
    then Model.from_db."""

    def __init__(self, model, alias, connection, offset):
        self.model, self.offset = model, offset
        fields = model._meta.concrete_fields
        self.names = [field.attname for field in fields]
        self.converters = []
        for index, field in enumerate(fields):
            column = field.get_col(alias)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                self.converters.append((index, column, found))

    def build(self, values, connection):
        mine = list(values[self.offset : self.offset + len(self.names)])
        for index, column, converters in self.converters:
            for converter in converters:
                mine[index] = converter(mine[index], column, connection)
        return self.model.from_db(connection.alias, self.names, mine)
