"""``{% load formatting %}`` for the benchmark's templates: the project's one set of filters."""
from msp_billing.templatetags.formatting import register  # noqa: F401
