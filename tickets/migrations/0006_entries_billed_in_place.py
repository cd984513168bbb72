"""Time entries are marked billed in place.

No index depends on ``billed_at`` any more and the table keeps half of each page free, so
PostgreSQL marks a month of entries billed with heap-only (HOT) updates instead of writing
a new entry into every index for every entry. The fill factor applies to pages written
from now on; ``VACUUM FULL tickets_timeentry`` rewrites older pages with the free space.
"""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tickets', '0005_sparse_and_unbilled_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(model_name='timeentry', name='timeentry_unbilled_by_date'),
        migrations.RemoveIndex(model_name='timeentry', name='timeentry_unrouted_open'),
        migrations.AddIndex(
            model_name='timeentry',
            index=models.Index(condition=models.Q(('is_unrouted', True)), fields=['date'], name='timeentry_unrouted'),
        ),
        migrations.RunSQL("ALTER TABLE tickets_timeentry SET (fillfactor = 50)",
                          "ALTER TABLE tickets_timeentry RESET (fillfactor)"),
    ]
