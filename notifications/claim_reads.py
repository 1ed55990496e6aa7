"""The read-back of a claim, in raw SQL: built by the ORM (a select_related of three tables), it
cost more CPU than the claim's UPDATE (docs/PERFORMANCE.md). The rows come back as the ORM
would build them: each field through its converters, the appointment and its patient attached."""

import functools

from django.db import connections


def claimed_rows(model, token, claimed_at, using):
    """The rows the claim with this token holds, each with its appointment and the appointment's
    patient. Found through the partial index of rows in flight (status and claimed_at: the
    status is written into the statement, so SQLite too sees that the index serves it)."""
    connection = connections[using]
    readers = _readers(model, using)
    sql = _select(model, using)
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
def _select(model, using):
    quote = connections[using].ops.quote_name
    (_, _), (appointment, _), (patient, _) = tables = _tables(model)
    columns = ", ".join(f"{alias}.{quote(f.column)}" for m, alias in tables for f in m._meta.concrete_fields)
    return (
        f"SELECT {columns} FROM {quote(model._meta.db_table)} t0 "
        f"INNER JOIN {quote(appointment._meta.db_table)} t1 ON t1.{quote('id')} = t0.{quote('appointment_id')} "
        f"INNER JOIN {quote(patient._meta.db_table)} t2 ON t2.{quote('id')} = t1.{quote('patient_id')} "
        f"WHERE t0.{quote('status')} = 'sending' AND t0.{quote('claimed_at')} = %s AND t0.{quote('claim_token')} = %s"
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
