from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications.operations import retention


class Command(BaseCommand):
    help = "Delete finished notifications (sent, cancelled, skipped, dead) older than the retention age."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=settings.NOTIFICATIONS_RETENTION_DAYS,
            metavar="DAYS",
            help=f"age in days (default NOTIFICATIONS_RETENTION_DAYS, {settings.NOTIFICATIONS_RETENTION_DAYS})",
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")

    def handle(self, *args, older_than_days, dry_run, **options):
        if older_than_days < 1:
            raise CommandError("--older-than-days must be a positive number")
        if dry_run:
            count = retention.purgeable(older_than_days).count()
            self.stdout.write(f"dry run: {count} notification(s) older than {older_than_days} days would be deleted")
            return
        deleted = retention.purge(older_than_days)
        self.stdout.write(f"deleted {deleted} notification(s) older than {older_than_days} days")
