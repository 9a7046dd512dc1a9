from django.apps import AppConfig


class SizingConfig(AppConfig):
    """Worker sizing: how many payment workers a target order rate needs (`recommend_workers`)."""

    name = "sizing"
