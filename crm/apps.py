from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm import checks, signals  # noqa: F401  (registers system checks and signal handlers)

        post_migrate.connect(_grant_app_role, sender=self, dispatch_uid="crm.grant_app_role")


def _grant_app_role(sender, using, **kwargs) -> None:
    from crm.db.grants import grant_app_role

    grant_app_role(using=using)
