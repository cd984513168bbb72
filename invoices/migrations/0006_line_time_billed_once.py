from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('invoices', '0005_line_source_released_at'),
        ('billing', '0003_time_billed_on_lines'),
        ('tickets', '0006_entries_billed_in_place'),
    ]

    operations = [
        migrations.AlterField(
            model_name='invoiceline',
            name='time_allocation',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=models.deletion.PROTECT, related_name='invoice_lines', to='tickets.timeallocation'),
        ),
        migrations.AddConstraint(
            model_name='invoiceline',
            constraint=models.UniqueConstraint(condition=models.Q(('time_allocation__isnull', False)), fields=('time_allocation', 'source_released_at'),
                                               name='line_time_billed_once', nulls_distinct=False),
        ),
    ]
