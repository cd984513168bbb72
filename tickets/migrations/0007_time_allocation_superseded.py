"""A time allocation still printed on a (void) invoice is kept, marked superseded, when its
entry is re-routed; the entry then bills from its new allocations."""

import django.db.models.manager
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tickets', '0006_entries_billed_in_place'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='timeallocation',
            options={'base_manager_name': 'with_superseded', 'ordering': ['entry', 'id']},
        ),
        migrations.AlterModelManagers(
            name='timeallocation',
            managers=[
                ('objects', django.db.models.manager.Manager()),
                ('with_superseded', django.db.models.manager.Manager()),
            ],
        ),
        migrations.AddField(
            model_name='timeallocation',
            name='superseded_at',
            field=models.DateTimeField(blank=True, help_text='When the entry was re-routed while this allocation was on a (void) invoice; the row stays for that invoice.', null=True),
        ),
    ]
