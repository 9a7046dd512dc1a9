from django.apps import AppConfig
from django.conf import settings

from . import metrics


class ObservabilityConfig(AppConfig):
    name = "observability"

    def ready(self) -> None:
        if settings.METRICS_EMF:
            metrics.enable_emf(
                settings.METRICS_EMF_NAMESPACE, flush_seconds=settings.METRICS_EMF_FLUSH_SECONDS
            )
