import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

TABLES = ["webhooks_app_alert", "webhooks_app_notification"]


def _model_key_constraints():
    """For each table: its indexes on model_id alone, and whether the key is one."""
    result = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            constraints = connection.introspection.get_constraints(cursor, table)
            on_key = [c for c in constraints.values() if c["columns"] == ["model_id"]]
            result[table] = (
                sum(c["index"] and not c["unique"] for c in on_key),
                any(c["foreign_key"] for c in on_key),
            )
    return result


def _migrate(target=None):
    executor = MigrationExecutor(connection)
    if target is None:
        executor.migrate(executor.loader.graph.leaf_nodes("webhooks_app"))
    else:
        executor.migrate([("webhooks_app", target)])


@pytest.mark.django_db(transaction=True)
def test_the_covered_model_key_indexes_go_and_come_back_keeping_the_keys():
    try:
        _migrate("0001_initial")
        before = _model_key_constraints()
        _migrate("0002_fk_indexes_covered")
        after = _model_key_constraints()
    finally:
        _migrate()

    assert before == {table: (1, True) for table in TABLES}
    assert after == {table: (0, True) for table in TABLES}
