# Message, QuotaUse and QuotaCounter, moved here from the designer app: their tables
# (designer_message, designer_quotause, designer_quotacounter) already exist and keep
# their names, so only Django's model state is created: no row is copied.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("designer", "0003_runtime_models_moved"),
        ("runtime", "0003_run_task_failures"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Message",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("broker", models.CharField(max_length=100)),
                        ("topic", models.CharField(max_length=200)),
                        ("payload", models.JSONField(blank=True, null=True)),
                        ("key", models.CharField(blank=True, default="", max_length=300)),
                        ("run_id", models.BigIntegerField(blank=True, null=True)),
                        ("runs", models.JSONField(blank=True, default=list)),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        (
                            "environment",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="designer.environment",
                            ),
                        ),
                        (
                            "product",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="messages",
                                to="designer.product",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "designer_message",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["environment", "broker", "topic", "created_at"],
                                name="designer_me_environ_15a8bc_idx",
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("key", ""), _negated=True),
                                fields=("environment", "broker", "topic", "key"),
                                name="uniq_message_key",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="QuotaCounter",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("quota", models.CharField(max_length=100)),
                        ("name", models.CharField(max_length=200)),
                        ("key", models.CharField(blank=True, default="", max_length=300)),
                        ("window_start", models.DateTimeField()),
                        ("count", models.PositiveIntegerField(default=0)),
                        (
                            "environment",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="designer.environment",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "designer_quotacounter",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("environment", "quota", "name", "key", "window_start"),
                                name="uniq_quota_window",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="QuotaUse",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("quota", models.CharField(max_length=100)),
                        ("name", models.CharField(max_length=200)),
                        ("step_key", models.CharField(max_length=200)),
                        ("allowed", models.BooleanField()),
                        ("used", models.PositiveIntegerField()),
                        ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        (
                            "environment",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="designer.environment",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "designer_quotause",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("environment", "quota", "name", "step_key"),
                                name="uniq_quota_use",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
