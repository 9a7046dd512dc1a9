from django.apps import AppConfig


class CapacityConfig(AppConfig):
    """Capacity planning: how many payment workers a target order rate needs (`recommend_workers`)."""

    name = "capacity"
