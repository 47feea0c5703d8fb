from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_checkpoint
from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Verify the audit hash chain (and the external checkpoints); exit 1 naming the first broken row."

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoints", default=None, help="checkpoint file (default: AUDIT_CHECKPOINT_FILE)"
        )
        parser.add_argument(
            "--no-checkpoint", action="store_true", help="do not record a new checkpoint"
        )

    def handle(self, *args, **options):
        path = options["checkpoints"] or settings.AUDIT_CHECKPOINT_FILE
        result = verify_chain(checkpoint_file=path)
        if result.broken is not None:
            raise CommandError(str(result.broken), returncode=1)
        if result.checkpoint_problems:
            raise CommandError("; ".join(result.checkpoint_problems), returncode=1)
        if not options["no_checkpoint"]:
            audit_checkpoint(note="verification")
        self.stdout.write(
            self.style.SUCCESS(
                f"audit chain OK: {result.checked} events, head {result.head_hash[:16]}…"
            )
        )
