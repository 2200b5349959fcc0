"""Notifications and alerts lose the index of their model key alone.

Each of those indexes repeats the first column of a composite index (for
notifications, also of the unique constraint), so it only costs writes. Only
the index is dropped: the foreign key constraints stay, so a large table is
not checked again, nor locked while it would be.
"""

import django.db.models.deletion
from django.db import migrations, models

COVERED = [("alert", "alerts"), ("notification", "notifications")]


def _single_column_indexes(schema_editor, table, column):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in constraints.items()
        if info["columns"] == [column]
        and info["index"]
        and not info["unique"]
        and not info["primary_key"]
    ]


def drop_covered_indexes(apps, schema_editor):
    quote = schema_editor.quote_name
    for model_name, _related_name in COVERED:
        model = apps.get_model("webhooks_app", model_name)
        table = model._meta.db_table
        column = model._meta.get_field("model").column
        for name in _single_column_indexes(schema_editor, table, column):
            schema_editor.execute(
                schema_editor.sql_delete_index
                % {"name": quote(name), "table": quote(table)}
            )


def restore_covered_indexes(apps, schema_editor):
    # The index as Django makes it for a foreign key, under the same name.
    for model_name, _related_name in COVERED:
        model = apps.get_model("webhooks_app", model_name)
        field = model._meta.get_field("model")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


def _unindexed_model_key(related_name):
    return models.ForeignKey(
        db_index=False,
        on_delete=django.db.models.deletion.CASCADE,
        related_name=related_name,
        to="webhooks_app.monitoredmodel",
        verbose_name="model",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks_app", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=model_name,
                    name="model",
                    field=_unindexed_model_key(related_name),
                )
                for model_name, related_name in COVERED
            ],
            database_operations=[
                migrations.RunPython(drop_covered_indexes, restore_covered_indexes),
            ],
        ),
    ]
