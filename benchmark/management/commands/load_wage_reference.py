"""``manage.py load_wage_reference [FILE] [--replace]``: update the wage reference table from a CSV file."""
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from benchmark.reference import wage_reference_load

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "wage_reference.csv"


class Command(BaseCommand):
    help = "Load published wage figures (each with its survey, date and source address) into the reference table."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", default=str(SHIPPED), help="CSV file (default: the table shipped with the product).")
        parser.add_argument("--replace", action="store_true", help="Remove every row not in the file.")

    def handle(self, *args, file, replace, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file} does not exist.")
        try:
            count = wage_reference_load(path.read_text(encoding="utf-8"), replace=replace)
        except (ValidationError, UnicodeDecodeError) as error:
            raise CommandError("; ".join(getattr(error, "messages", [str(error)]))) from error
        self.stdout.write(self.style.SUCCESS(f"Loaded {count} wage reference rows from {path}."))
