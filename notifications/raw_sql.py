"""Statements of the hot paths in raw SQL, where the ORM's building of them cost more CPU than
the work they served (docs/PERFORMANCE.md): a claim's read-back, the current-state read of rows
about to be handed out, a booking's planned rows and an outcome write's attempt rows. (The
outcome write's other statements are beside record_outcomes, in models.py.)"""

import functools
import itertools

from django.db import connections, router


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


# Rows one statement carries at most: PostgreSQL binds up to 65,535 parameters, SQLite 32,766.
MAX_PARAMETERS = 30_000


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
        [field.get_db_prep_save(value, connection) for field, value in zip(fields, row, strict=True)] for row in rows
    ]
    inserted = []
    per_statement = max(1, MAX_PARAMETERS // len(fields))
    with connection.cursor() as cursor:
        for start in range(0, len(prepared), per_statement):
            chunk = prepared[start : start + per_statement]
            cursor.execute(head + ", ".join([placeholders] * len(chunk)) + tail, [v for row in chunk for v in row])
            if returning:
                inserted += cursor.fetchall()
    return inserted


def claimed_rows(model, token, claimed_at, status, using):
    """The rows the claim with this token holds (in this status, claimed at claimed_at), each with
    its appointment and the appointment's patient. Found through the partial index of rows in
    flight: the status is written into the statement, so SQLite too sees that the index serves it."""
    connection = connections[using]
    tables = _tables(model)
    row = tables[0][1]
    sql = (
        f"{_select_joined(tables, using)} WHERE {row}.{_column(model, 'status', using)} = '{status}' "
        f"AND {row}.{_column(model, 'claimed_at', using)} = %s AND {row}.{_column(model, 'claim_token', using)} = %s"
    )
    fields = model._meta
    params = [
        fields.get_field("claimed_at").get_db_prep_value(claimed_at, connection),
        fields.get_field("claim_token").get_db_prep_value(token, connection),
    ]
    rows = []
    for row, appointment, patient in _fetch(tables, using, sql, params):
        appointment.patient = patient
        row.appointment = appointment
        rows.append(row)
    return rows


def appointments_with_patients(appointment, ids, using):
    """These appointments by id, each with its patient: what in_bulk() of a
    select_related("patient") queryset gives, without the ORM's building of the statement."""
    tables = _appointment_tables(appointment)
    (_, alias, _), _ = tables
    ids = list(ids)
    if not ids:
        return {}
    sql = f"{_select_joined(tables, using)} WHERE {alias}.{_column(appointment, 'id', using)} IN ({', '.join(['%s'] * len(ids))})"
    found = {}
    for appointment, patient in _fetch(tables, using, sql, ids):
        appointment.patient = patient
        found[appointment.pk] = appointment
    return found


def _tables(model):
    """The tables a claim's read-back joins: each with its alias, and the foreign key to the next."""
    return ((model, "t0", "appointment"), *_appointment_tables(model._meta.get_field("appointment").related_model))


def _appointment_tables(appointment):
    return ((appointment, "t1", "patient"), (appointment._meta.get_field("patient").related_model, "t2", None))


def _column(model, name, using):
    return connections[using].ops.quote_name(model._meta.get_field(name).column)


@functools.cache
def _select_joined(tables, using):
    """SELECT every column of these tables FROM the first, each next joined by the foreign key."""
    quote = connections[using].ops.quote_name
    columns = ", ".join(f"{alias}.{quote(f.column)}" for m, alias, _ in tables for f in m._meta.concrete_fields)
    (first, first_alias, _), joins = tables[0], []
    for (model, alias, key), (target, target_alias, _) in itertools.pairwise(tables):
        joins.append(
            f"INNER JOIN {quote(target._meta.db_table)} {target_alias} "
            f"ON {target_alias}.{_column(target, 'id', using)} = {alias}.{_column(model, key, using)}"
        )
    return f"SELECT {columns} FROM {quote(first._meta.db_table)} {first_alias} {' '.join(joins)}"


def _fetch(tables, using, sql, params):
    """Each row of the statement as one instance a table, built by the ORM's converters."""
    connection = connections[using]
    readers = _readers(tables, using)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    return [[reader.build(values, connection) for reader in readers] for values in fetched]


@functools.cache
def _readers(tables, using):
    readers, offset = [], 0
    for table, alias, _ in tables:
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
