import json

from django.core.management.base import BaseCommand

from notifications.operations.monitoring import queue_summary


class Command(BaseCommand):
    help = "Counts of notifications by status and channel, and the age of the oldest due row."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        summary = queue_summary()
        if options["json"]:
            self.stdout.write(json.dumps(summary, sort_keys=True))
            return
        self.stdout.write("status     " + " ".join(f"{c:>9}" for c in summary["channels"]) + "     total")
        for status, row in summary["by_status"].items():
            cells = " ".join(f"{row.get(c, 0):>9}" for c in summary["channels"])
            self.stdout.write(f"{status:<10} {cells} {sum(row.values()):>9}")
        age = summary["oldest_due_age_seconds"]
        self.stdout.write(
            f"due now: {summary['due']}; oldest due: " + (f"{age:.0f}s ago" if age is not None else "none")
        )
