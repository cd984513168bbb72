"""The tenant URLconf as data: every route with its parameters, so the robustness tests cover a
new view without being edited."""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Route:
    template: str  # "/invoices/<int:invoice_id>/pdf/"
    name: str  # "invoices:pdf"
    view: object

    @property
    def parameters(self) -> list[tuple[str, str]]:
        """(converter, name) of each parameter, in order."""
        return [(m["converter"] or "str", m["name"]) for m in PARAMETER.finditer(self.template)]

    @property
    def id_parameters(self) -> list[str]:
        return [name for converter, name in self.parameters if converter == "int"]

    def path(self, **values) -> str:
        return PARAMETER.sub(lambda m: str(values[m["name"]]), self.template)

    def segment_before(self, parameter: str) -> str:
        """The path segment naming what ``parameter`` identifies: "work-types" in "/work-types/<int:pk>/"."""
        [match] = [m for m in PARAMETER.finditer(self.template) if m["name"] == parameter]
        segments = [s for s in PARAMETER.sub("", self.template[: match.start()]).split("/") if s]
        return segments[-1] if segments else ""

    def __str__(self) -> str:
        return self.template


# Sample values for the parameters that are not ids (the access walk fills these too).
SAMPLES = {"uidb64": "MQ", "token": "set-password", "system": "quickbooks", "step": "accounts", "fmt": "csv"}


def tenant_routes() -> list[Route]:
    found: list[Route] = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = str(pattern.pattern).replace("^", "").replace("$", "")
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, prefix + route, inner)
            elif isinstance(pattern, URLPattern):
                found.append(Route("/" + prefix + route, f"{namespace}{pattern.name or ''}", pattern.callback))

    walk(get_resolver("msp_billing.urls_tenant").url_patterns, "", "")
    return found


def sample_path(route: Route, default_id: int = 1) -> str:
    """The route with sample values: ``default_id`` for ids, a fixed word for the rest."""
    return route.path(**{name: default_id if converter == "int" else SAMPLES.get(name, "x")
                         for converter, name in route.parameters})
