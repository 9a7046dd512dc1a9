from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator's console in the admin (/admin/operations/): live figures of a sale and the actions
    that fix it. No models, so the label ("console") names no table."""

    name = "console"
    verbose_name = "Operations console"
