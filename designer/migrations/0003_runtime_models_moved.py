# Message, QuotaUse and QuotaCounter moved to the runtime app, which alone uses them.
# Their tables keep their names (runtime's 0004 sets db_table), so only Django's model
# state changes here: no table is dropped and no row is copied.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("designer", "0002_quota_use"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Message"),
                migrations.DeleteModel(name="QuotaCounter"),
                migrations.DeleteModel(name="QuotaUse"),
            ],
            database_operations=[],
        ),
    ]
