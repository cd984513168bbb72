from django.db import migrations, models

from msp_billing.migration_ops import add_field_with_named_check


class Migration(migrations.Migration):

    dependencies = [
        ("tickets", "0007_time_allocation_superseded"),
    ]

    operations = [
        add_field_with_named_check(
            model_name="timeentry", table="tickets_timeentry",
            name="billable_minutes",
            field=models.PositiveIntegerField(
                blank=True, null=True,
                help_text="Minutes to bill when they differ from the time worked (45 billable minutes of a 2-hour "
                          "visit; 0 bills nothing). Billed as given: no rounding or minimum. Empty: the time worked "
                          "is billed under the contract's rounding rule.",
            ),
        ),
    ]
