"""Billed time is recorded by the invoice's time lines instead of one batch item per allocation.

Every (batch, invoice) pair becomes a ``BatchInvoice``; time lines whose batch item is gone
(their batch was deleted and the time released) are marked released; time batch items go.
"""
import django.db.models.deletion
from django.db import migrations, models

FORWARD = [
    """INSERT INTO billing_batchinvoice (batch_id, invoice_id)
       SELECT DISTINCT ON (invoice_id) batch_id, invoice_id FROM billing_batchitem ORDER BY invoice_id, id""",
    """UPDATE invoices_invoiceline l SET source_released_at = now()
       WHERE l.time_allocation_id IS NOT NULL AND l.source_released_at IS NULL AND NOT EXISTS (
           SELECT 1 FROM billing_batchitem b WHERE b.allocation_id = l.time_allocation_id AND b.invoice_id = l.invoice_id)""",
    "DELETE FROM billing_batchitem WHERE kind = 'time'",
]


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_sparse_reference_indexes'),
        ('invoices', '0005_line_source_released_at'),
    ]

    operations = [
        migrations.CreateModel(
            name='BatchInvoice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('batch', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invoice_links', to='billing.billingbatch')),
                ('invoice', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='batch_link', to='invoices.invoice')),
            ],
        ),
        migrations.RunSQL(FORWARD, migrations.RunSQL.noop),
        migrations.RemoveConstraint(model_name='batchitem', name='time_billed_once'),
        migrations.RemoveConstraint(model_name='batchitem', name='batch_item_one_source'),
        migrations.RemoveField(model_name='batchitem', name='allocation'),
        migrations.AlterField(
            model_name='batchitem',
            name='kind',
            field=models.CharField(choices=[('period', 'Contract period'), ('charge', 'Part or expense')], max_length=8),
        ),
        migrations.AddConstraint(
            model_name='batchitem',
            constraint=models.CheckConstraint(
                condition=models.Q(models.Q(('charge__isnull', True), ('kind', 'period'), ('period__isnull', False)),
                                   models.Q(('charge__isnull', False), ('kind', 'charge'), ('period__isnull', True)), _connector='OR'),
                name='batch_item_period_or_charge'),
        ),
    ]
