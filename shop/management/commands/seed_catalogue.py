from django.core.management.base import BaseCommand

from shop.catalogue import seed_demo_catalogue


class Command(BaseCommand):
    help = "Create (or refresh) the demo catalogue. Safe to run repeatedly."

    def handle(self, *args, **options):
        created, updated = seed_demo_catalogue()
        self.stdout.write(self.style.SUCCESS(f"Catalogue: {created} created, {updated} refreshed."))
