"""Statements written out once and run with new values: recording's hot path.

Building a query through the ORM costs several times what the database takes
to run it, and recording runs a handful of them for every notification. So
recording writes its few statements here, once per database vendor, and binds
only values. Table and column names, the conversion of values to and from the
database, and defaults still come from the models' fields, so the statements
follow the models.
"""

import functools
import json
import sys

from django.db import InterfaceError, OperationalError

from webhooks_app.conf import app_settings
from webhooks_app.models import Alert, MonitoredModel, Notification, Webhook

# The columns of an alert's own values, in the order recording gives them.
ALERT_COLUMNS = ("category", "kind", "key", "metric_name")

# Written statements and converters by database vendor and purpose.
_cache = {}


def _cached(connection, key, make):
    key = (connection.vendor, *key)
    if key not in _cache:
        _cache[key] = make()
    return _cache[key]


@functools.cache
def _prepared_cursor_class():
    import psycopg

    class PreparedCursor(psycopg.Cursor):
        """Values bound on the server; each statement prepared once per connection."""

        def execute(self, query, params=None, *, prepare=True, binary=None):
            return super().execute(query, params, prepare=prepare, binary=binary)

    return PreparedCursor


def _prepares(connection):
    if connection.vendor != "postgresql" or not app_settings.PREPARED_STATEMENTS:
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


def _cursor(connection):
    """A cursor for the statements here, used as a context manager.

    On PostgreSQL (with psycopg 3) it sends values apart from the statement
    and prepares each statement once per connection, so the server parses and
    plans it once rather than for every notification. Queries still pass
    through Django's cursor wrapper: logged, counted and their errors mapped.
    """
    if not _prepares(connection):
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's preparing off, which also refuses a
        # statement asked to be prepared. A threshold never reached lets
        # these be prepared while no other query is prepared by count.
        raw.prepare_threshold = sys.maxsize
    with connection.wrap_database_errors:
        cursor = _prepared_cursor_class()(raw)
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


def _fetch_first_checked(connection, sql, params):
    """The first row of a read, which also serves as the connection's health check.

    With CONN_HEALTH_CHECKS, Django sends a query of its own before a request's
    first query on a connection kept from an earlier request, and replaces the
    connection if it died while idle. When this read is that first query, it
    is the check instead: if it fails on a connection that no longer works,
    the connection is replaced and the read (which changes nothing) repeated.
    That saves a round trip to the database for each notification.
    """
    checking = (
        connection.connection is not None
        and connection.health_check_enabled
        and not connection.health_check_done
        and connection.get_autocommit()
    )
    if checking:
        connection.health_check_done = True
    try:
        return _fetch_first(connection, sql, params)
    except (InterfaceError, OperationalError):
        if not checking or connection.is_usable():
            raise
        connection.close()
    return _fetch_first(connection, sql, params)


def _fetch_first(connection, sql, params):
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _quote(connection, name):
    return connection.ops.quote_name(name)


def _columns(connection, fields):
    return ", ".join(_quote(connection, field.column) for field in fields)


def _model_statement(connection, lock=False, extra=""):
    """Read a model's columns, any `extra` ones, and whether a webhook is on."""
    model = MonitoredModel._meta
    enabled = Webhook._meta.get_field("enabled").column
    q = functools.partial(_quote, connection)
    # Names from the models' metadata, quoted; every value is a bound parameter.
    sql = (
        f"SELECT {_columns(connection, model.concrete_fields)}{extra},"  # noqa: S608
        f" EXISTS (SELECT 1 FROM {q(Webhook._meta.db_table)} WHERE {q(enabled)} = %s)"
        f" FROM {q(model.db_table)}"
        f" WHERE {q(model.get_field('nannyml_id').column)} = %s"
    )
    return f"{sql} FOR UPDATE" if lock else sql


def _converters(connection, model):
    """The field names, and the converters a query would apply, by position."""
    names, converting = [], []
    for position, field in enumerate(model._meta.concrete_fields):
        names.append(field.attname)
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column)
        converters += column.get_db_converters(connection)
        if converters:
            converting.append((position, column, converters))
    return names, converting


def _from_db(connection, model, row):
    names, converting = _cached(
        connection, ("from_db", model), lambda: _converters(connection, model)
    )
    values = list(row)
    if len(values) != len(names):
        raise ValueError(f"{len(values)} values for {len(names)} fields")
    for position, column, converters in converting:
        value = values[position]
        for converter in converters:
            value = converter(value, column, connection)
        values[position] = value
    return model.from_db(connection.alias, names, values)


def read_model(connection, nannyml_id, lock):
    """The monitored model with that id, or None, and whether any webhook is on.

    With `lock`, the row stays locked until the transaction ends (on a
    database that can lock rows).
    """
    lock = lock and connection.features.has_select_for_update
    sql = _cached(
        connection, ("model", lock), lambda: _model_statement(connection, lock)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, nannyml_id])
        row = cursor.fetchone()
    if row is None:
        return None, False
    *fields, any_webhook = row
    return _from_db(connection, MonitoredModel, fields), bool(any_webhook)


def _insert_fields(model, with_pk=False):
    return [
        field
        for field in model._meta.concrete_fields
        if with_pk or not field.primary_key
    ]


def _insert_sql(connection, model, fields, rows=1):
    row = f"({', '.join(['%s'] * len(fields))})"
    table = _quote(connection, model._meta.db_table)
    return (
        f"INSERT INTO {table} ({_columns(connection, fields)})"  # noqa: S608
        f" VALUES {', '.join([row] * rows)}"
    )


def _values(connection, instance, fields):
    return [
        field.get_db_prep_save(getattr(instance, field.attname), connection)
        for field in fields
    ]


def insert(connection, instance):
    """INSERT `instance` (a new row, defaults applied) and set its primary key."""
    model = type(instance)
    fields = _insert_fields(model)
    returning = connection.features.can_return_columns_from_insert
    pk_column = model._meta.pk.column

    def make():
        sql = _insert_sql(connection, model, fields)
        if returning:
            sql += f" RETURNING {_quote(connection, pk_column)}"
        return sql

    sql = _cached(connection, ("insert", model, returning), make)
    with connection.cursor() as cursor:
        cursor.execute(sql, _values(connection, instance, fields))
        if returning:
            pk = cursor.fetchone()[0]
        else:
            pk = connection.ops.last_insert_id(cursor, model._meta.db_table, pk_column)
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def insert_rows(connection, model, names, rows):
    """INSERT rows of values for the fields `names`, many to a statement."""
    if not rows:
        return
    fields = [model._meta.get_field(name) for name in names]
    size = connection.ops.bulk_batch_size(fields, rows)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            cursor.execute(
                _insert_sql(connection, model, fields, rows=len(batch)),
                [
                    field.get_db_prep_save(value, connection)
                    for row in batch
                    for field, value in zip(fields, row, strict=True)
                ],
            )


# Alerts go in as one JSON array of rows (of ALERT_COLUMNS), so that the
# statement is the same text for any number of them and sending them costs
# one value, not one per column of each alert. The rows are inserted in the
# order they are in, which is the order alerts are sent on in.
_JSON_ROWS = {
    "postgresql": (
        "json_array_elements(%s::json) WITH ORDINALITY AS e(value, position)",
        "e.value->>{index}",
        "e.position",
    ),
    "sqlite": ("json_each(%s) AS e", "json_extract(e.value, '$[{index}]')", "e.key"),
}


def _alert_fields():
    alert = Alert._meta
    return [
        alert.get_field("notification"),
        alert.get_field("model"),
        alert.get_field("run_started_at"),
        *(alert.get_field(name) for name in ALERT_COLUMNS),
    ]


def _alerts_from_json(connection, source_columns, joined=""):
    """INSERT … SELECT of the alerts, `source_columns` giving the first three
    columns (from `joined`, a table joined to the rows, if given).
    """
    source, value, order = _JSON_ROWS[connection.vendor]
    values = ", ".join(value.format(index=index) for index in range(len(ALERT_COLUMNS)))
    table = _quote(connection, Alert._meta.db_table)
    return (
        f"INSERT INTO {table} ({_columns(connection, _alert_fields())})"  # noqa: S608
        f" SELECT {source_columns}, {values} FROM {joined}{source}"
        f" ORDER BY {order}"
    )


def _alert_rows(alerts):
    return json.dumps(alerts, ensure_ascii=False)


def insert_alerts(connection, notification, alerts):
    """INSERT the alerts (rows of ALERT_COLUMNS) of a recorded notification."""
    if not alerts:
        return
    fields = _alert_fields()[:3]
    values = [notification.pk, notification.model_id, notification.run_started_at]
    if connection.vendor not in _JSON_ROWS:
        names = [field.name for field in fields] + list(ALERT_COLUMNS)
        insert_rows(connection, Alert, names, [(*values, *row) for row in alerts])
        return

    def make():
        params = (_param(connection, field) for field in fields)
        return _alerts_from_json(connection, ", ".join(params))

    sql = _cached(connection, ("insert alerts",), make)
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, _alert_rows(alerts)])


@functools.cache
def _fields(model, names):
    return [model._meta.get_field(name) for name in names]


def _param(connection, field):
    """A placeholder, typed where PostgreSQL may bind it apart from the text."""
    if connection.vendor == "postgresql":
        return f"%s::{field.cast_db_type(connection)}"
    return "%s"


def update(connection, model, pk, values):
    """UPDATE one row of `model`: `values` maps field names (or attnames) on."""
    names = tuple(values)

    def make():
        assignments = ", ".join(
            f"{_quote(connection, field.column)} = %s"
            for field in _fields(model, names)
        )
        return (
            f"UPDATE {_quote(connection, model._meta.db_table)} SET {assignments}"  # noqa: S608
            f" WHERE {_quote(connection, model._meta.pk.column)} = %s"
        )

    sql = _cached(connection, ("update", model, names), make)
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(_fields(model, names), values.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pk])


# PostgreSQL: a newer run of a known model in one statement, without a lock.
# The model row is read with its version (xmin, which every update of the row
# changes) and the next notification key; the summary is worked out from what
# was read; then one statement updates the row only if it is still at that
# version and, only then, inserts the notification and its alerts. If anything
# recorded in between, nothing is written and the caller takes the locked way.


def read_versioned_model(connection, nannyml_id):
    """The model, its row version, whether any webhook is on, the next key.

    None when there is no such model yet.
    """
    notifications = Notification._meta
    sql = _cached(
        connection,
        ("read versioned",),
        lambda: _model_statement(
            connection, extra=", xmin::text, nextval(pg_get_serial_sequence(%s, %s))"
        ),
    )
    params = [notifications.db_table, notifications.pk.column, True, nannyml_id]
    row = _fetch_first_checked(connection, sql, params)
    if row is None:
        return None
    *fields, version, next_id, any_webhook = row
    return _from_db(connection, MonitoredModel, fields), version, any_webhook, next_id


def _copied_fields():
    """The notification's columns that the statement binds (all but two)."""
    return [field for field in _insert_fields(Notification) if field.name != "model"]


def _record_statement(connection, summary_names):
    model = MonitoredModel._meta
    notification = Notification._meta
    q = functools.partial(_quote, connection)
    assignments = ", ".join(
        f"{q(model.get_field(name).column)} = %s" for name in summary_names
    )
    inserted = [notification.pk, notification.get_field("model"), *_copied_fields()]
    selected = ", ".join(
        [
            _param(connection, notification.pk),
            "m.id",
            *(_param(connection, field) for field in _copied_fields()),
        ]
    )
    run_started_at = q(notification.get_field("run_started_at").column)
    return (
        f"WITH m AS (UPDATE {q(model.db_table)} SET {assignments}"  # noqa: S608
        f" WHERE {q(model.pk.column)} = %s AND xmin::text = %s"
        f" RETURNING {q(model.pk.column)} AS id),"
        f" n AS (INSERT INTO {q(notification.db_table)}"
        f" ({_columns(connection, inserted)}) SELECT {selected} FROM m"
        f" RETURNING {q(notification.pk.column)} AS id,"
        f" {q(notification.get_field('model').column)} AS model_id,"
        f" {run_started_at} AS run_started_at)"
    )


def _alerts_statement(connection):
    """The alerts' part, taking the notification's key, model and run from n."""
    sql = _alerts_from_json(
        connection, "n.id, n.model_id, n.run_started_at", joined="n CROSS JOIN "
    )
    return f", a AS ({sql})"


def _newest_statement(connection, summary_names, with_alerts):
    alerts = _alerts_statement(connection) if with_alerts else ""
    statement = _record_statement(connection, summary_names)
    return f"{statement}{alerts} SELECT id FROM n"  # noqa: S608


def record_newest(connection, model, version, summary, notification, alerts):
    """Update `model` with `summary` and insert `notification` (its key set)
    and `alerts` (rows of ALERT_COLUMNS), in one statement; False, writing
    nothing, if the model's row is no longer at `version`.
    """
    names = tuple(summary)
    sql = _cached(
        connection,
        ("record newest", names, bool(alerts)),
        lambda: _newest_statement(connection, names, bool(alerts)),
    )
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(
            _fields(MonitoredModel, names), summary.values(), strict=True
        )
    ]
    params += [model.pk, version, notification.pk]
    params += _values(connection, notification, _copied_fields())
    if alerts:
        params.append(_alert_rows(alerts))
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    notification._state.adding = False
    notification._state.db = connection.alias
    return True
