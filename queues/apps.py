from django.apps import AppConfig


class QueuesConfig(AppConfig):
    """SQS administration: create the payment queue and its DLQ, read depths, inspect and redrive."""

    name = "queues"
