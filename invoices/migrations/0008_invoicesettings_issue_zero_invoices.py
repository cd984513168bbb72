from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('invoices', '0007_invoice_customer_reverse_charge'),
    ]

    operations = [
        migrations.AddField(
            model_name='invoicesettings',
            name='issue_zero_invoices',
            field=models.BooleanField(default=False, help_text="Bill contracts whose due total is 0.00 (only covered or deducted time) in every run, so each gets a numbered 0.00 invoice. Off: such time waits for the contract's next invoice with something to charge."),
        ),
    ]
