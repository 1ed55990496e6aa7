from django.core.management.base import BaseCommand, CommandError

from notifications.outbox import sweeps


class Command(BaseCommand):
    help = "Send due notifications in this process: the same sweep celery-beat runs."
    # Run by cron as often as every minute: like the worker, it runs no system checks, which
    # cost a fifth of its start-up's CPU (0.4 of 2.4 s on a busy 2-core machine); `migrate`
    # runs them at each deploy.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list what would be sent; write nothing")
        parser.add_argument(
            "--retry-failed", action="store_true", help="also retry failed rows whose backoff has passed"
        )
        parser.add_argument("--max", type=int, default=100, metavar="N", help="handle at most N rows (default 100)")

    def handle(self, *args, dry_run, retry_failed, max, **options):
        if max < 1:
            raise CommandError("--max must be a positive number")
        if dry_run:
            rows = sweeps.due_rows(max, include_failed=retry_failed)
            for row in rows:
                self.stdout.write(
                    f"would send #{row.pk} {row.kind} by {row.channel} to patient {row.patient_id} "
                    f"(status {row.status}, due {row.scheduled_for:%Y-%m-%d %H:%M} UTC, attempts {row.attempts})"
                )
            self.stdout.write(f"dry run: {len(rows)} notification(s) due; nothing sent")
            return
        # Hosts without beat have no reclaim task: the rows of a run that crashed wait here.
        reclaimed = sweeps.reclaim_expired_leases()
        if reclaimed["returned"] or reclaimed["dead"]:
            self.stderr.write(
                f"reclaimed expired leases: {reclaimed['returned']} row(s) back in the queue, "
                f"{reclaimed['dead']} out of attempts"
            )
        report = sweeps.sweep(max_rows=max, include_failed=retry_failed)
        self.stdout.write(str(report))
