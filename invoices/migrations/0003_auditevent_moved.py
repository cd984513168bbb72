"""``AuditEvent`` now belongs to ``msp_billing.audit`` (migration ``audit.0001_initial``),
which keeps using this table; here it only leaves the ``invoices`` state. No rows move."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("invoices", "0002_pdf_branding_and_documents"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        ),
    ]
