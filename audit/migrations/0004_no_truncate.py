"""Refuse TRUNCATE of the audit table on PostgreSQL (row triggers do not see a TRUNCATE)."""

from django.db import migrations

TRIGGER_SQL = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
"""
DROP_SQL = "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_siem_cursor")]
    operations = [migrations.RunPython(forwards, backwards)]
