from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('invoices', '0004_sparse_reference_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='invoiceline',
            name='source_released_at',
            field=models.DateTimeField(blank=True, null=True, help_text="When billing released this line's source for rebilling (its batch was deleted); the line stays on its void invoice."),
        ),
    ]
