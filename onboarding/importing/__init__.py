"""Import an MSP's billing data from one JSON file (format: docs/import-format.md)."""
from onboarding.importing.core import *  # noqa: F401,F403
from onboarding.importing.core import _Importer  # noqa: F401
