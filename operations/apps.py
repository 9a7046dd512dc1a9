from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The operator's console in the admin: live figures of a sale and the actions that fix it."""

    name = "operations"
    verbose_name = "Operations"
