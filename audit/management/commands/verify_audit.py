from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.exporting import verify_export_file
from audit.services import audit_checkpoint, audit_verification_record
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
        parser.add_argument(
            "--export",
            default=None,
            metavar="FILE",
            help="check an export (its chain and FILE.manifest.json) instead of the database",
        )
        parser.add_argument(
            "--manifest", default=None, help="manifest for --export (default: FILE.manifest.json)"
        )

    def handle(self, *args, **options):
        if options["export"]:
            return self._verify_export(options["export"], options["manifest"])
        path = options["checkpoints"] or settings.AUDIT_CHECKPOINT_FILE
        result = verify_chain(checkpoint_file=path)
        audit_verification_record(result=result)  # /metrics reports the last one
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

    def _verify_export(self, path: str, manifest: str | None) -> None:
        check = verify_export_file(path, manifest_file=manifest)
        if not check.ok:
            raise CommandError(
                f"audit export {path} failed verification: " + "; ".join(check.problems),
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS(f"audit export OK: {check.count} events in {path}"))
