from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tickets", "0007_time_allocation_superseded"),
    ]

    operations = [
        migrations.AddField(
            model_name="timeentry",
            name="billable_minutes",
            field=models.PositiveIntegerField(
                blank=True, null=True,
                help_text="Minutes to bill when they differ from the time worked (45 billable minutes of a 2-hour "
                          "visit; 0 bills nothing). Billed as given: no rounding or minimum. Empty: the time worked "
                          "is billed under the contract's rounding rule.",
            ),
        ),
    ]
