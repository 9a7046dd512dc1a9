from django.apps import AppConfig


class SizingConfig(AppConfig):
    """Worker sizing: how many payment workers a target order rate needs (`recommend_workers`), from
    the seed's formula and the lab's measured results (results.py, the one schema of results.json)."""

    name = "sizing"
