"""Reports other apps add to the reports index: (title, URL name, what it shows).

An app registers its reports in its ``AppConfig.ready`` (``report_add``); the index lists
them after its own, so this app imports none of them."""
from __future__ import annotations

from dataclasses import dataclass

from msp_billing.hooks import hook_add


@dataclass(frozen=True)
class ReportLink:
    title: str
    url_name: str
    description: str


REPORTS: list[ReportLink] = []


def report_add(title: str, url_name: str, description: str) -> None:
    hook_add(REPORTS, ReportLink(title=title, url_name=url_name, description=description))
