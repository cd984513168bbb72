"""The forms of a rendered page, as a browser would submit them (Python's own HTML parser)."""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

NOT_SUBMITTED = {"submit", "button", "reset", "image", "file"}


@dataclass
class Field:
    name: str
    kind: str  # the input type, "select", "textarea"
    value: str = ""
    options: list[str] = field(default_factory=list)
    checked: bool = False
    multiple: bool = False


@dataclass
class Form:
    action: str
    method: str
    fields: list[Field] = field(default_factory=list)

    def data(self) -> dict[str, list[str]]:
        """What the browser would send unchanged: checked boxes, the selected option, each value."""
        sent: dict[str, list[str]] = {}
        for f in self.fields:
            if f.kind in ("checkbox", "radio") and not f.checked:
                continue
            sent.setdefault(f.name, []).append(f.value)
        return sent

    def editable(self) -> list[Field]:
        """The fields a user types or picks into (not the CSRF token, not hidden state)."""
        return [f for f in self.fields if f.kind != "hidden" and f.name != "csrfmiddlewaretoken"]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: Field | None = None
        self._option: tuple[str, bool] | None = None
        self._option_text: list[str] = []
        self._textarea: Field | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
            return
        if not self.forms or "disabled" in a:
            return
        form = self.forms[-1]
        if tag == "input" and a.get("name") and a.get("type", "text").lower() not in NOT_SUBMITTED:
            kind = a.get("type", "text").lower()
            form.fields.append(Field(a["name"], kind, a.get("value", "on" if kind in ("checkbox", "radio") else ""),
                                     checked="checked" in a))
        elif tag == "select" and a.get("name"):
            self._select = Field(a["name"], "select", multiple="multiple" in a)
            form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            self._option = (a.get("value"), "selected" in a)
            self._option_text = []
        elif tag == "textarea" and a.get("name"):
            self._textarea = Field(a["name"], "textarea")
            form.fields.append(self._textarea)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data
        if self._option is not None:
            self._option_text.append(data)

    def handle_endtag(self, tag):
        if tag == "option" and self._option is not None and self._select is not None:
            value, selected = self._option
            value = value if value is not None else "".join(self._option_text).strip()
            self._select.options.append(value)
            if selected or not self._select.value and not self._select.multiple and len(self._select.options) == 1:
                self._select.value = value
            self._option = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def page_forms(html: str) -> list[Form]:
    parser = _Parser()
    parser.feed(html)
    return parser.forms


def post_forms(html: str) -> list[Form]:
    return [form for form in page_forms(html) if form.method == "post"]
