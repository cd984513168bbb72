"""PDF branding of an MSP's invoices: logo, brand colour and template.

The logo is checked by its content, not its name: a PNG or JPEG that Pillow can read, or
an SVG document without scripts, entity declarations or embedded HTML — at most 1 MB. The
brand colour is ``#RRGGBB`` and nothing else, because it is written into the PDF's CSS
(the database refuses anything else too). The logo is printed through a ``data:`` URI,
so it is never served from a public media URL and WeasyPrint never fetches anything.
"""
from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ElementTree
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from invoices.audit import audit_record
from invoices.models import HEX_COLOUR, InvoiceSettings

MAX_LOGO_BYTES = 1024 * 1024
LOGO_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "svg": "image/svg+xml"}
LOGO_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "svg": ".svg"}
BRANDING_FIELDS = ("logo", "brand_colour", "pdf_template")
_HEX = re.compile(HEX_COLOUR)
_SVG_FORBIDDEN = ("script", "foreignObject", "iframe", "embed", "object")


def validate_brand_colour(value: str) -> str:
    """``#1f4e79`` → ``#1F4E79``; anything that is not ``#RRGGBB`` is refused."""
    text = (value or "").strip()
    if not _HEX.match(text):
        raise ValidationError("Enter the brand colour as # and six hexadecimal digits, such as #1F4E79.",
                              code="brand_colour")
    return text.upper()


def logo_kind(content: bytes) -> str:
    """``"png"``, ``"jpeg"`` or ``"svg"``; a ``ValidationError`` saying why for anything else."""
    if len(content) > MAX_LOGO_BYTES:
        raise ValidationError(f"The logo is {len(content) / 1024 / 1024:.1f} MB; it may be at most 1 MB.",
                              code="logo_too_large")
    if not content:
        raise ValidationError("The logo file is empty.", code="logo_empty")
    if content.startswith(b"\x89PNG\r\n\x1a\n") or content.startswith(b"\xff\xd8\xff"):
        return _bitmap_kind(content)
    if b"<svg" in content[:4096] or content.lstrip().startswith(b"<?xml"):
        return _svg_kind(content)
    raise ValidationError("The logo must be a PNG, JPEG or SVG image.", code="logo_type")


def _bitmap_kind(content: bytes) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(content)) as image:
            kind = (image.format or "").lower()
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValidationError("The logo could not be read as a PNG or JPEG image; it may be damaged.",
                              code="logo_type") from error
    if kind not in ("png", "jpeg"):
        raise ValidationError("The logo must be a PNG, JPEG or SVG image.", code="logo_type")
    return kind


def _svg_kind(content: bytes) -> str:
    refused = ValidationError("The logo could not be read as an SVG image.", code="logo_type")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise refused from error
    # No DTDs: entity expansion is how an XML file turns 1 MB into gigabytes.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValidationError("SVG logos may not contain a DOCTYPE or entity declarations.", code="logo_svg_unsafe")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise refused from error
    if root.tag.rsplit("}", 1)[-1] != "svg":
        raise refused
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        if name in _SVG_FORBIDDEN or any(attr.rsplit("}", 1)[-1].lower().startswith("on") for attr in element.attrib):
            raise ValidationError("SVG logos may not contain scripts or embedded documents.", code="logo_svg_unsafe")
    return "svg"


@transaction.atomic
def invoice_branding_update(
    *,
    acting_user,
    brand_colour: str | None = None,
    pdf_template: str | None = None,
    logo: bytes | None = None,
    remove_logo: bool = False,
) -> InvoiceSettings:
    """Change the logo (new content or removed), brand colour and template (audited).

    Invoices already rendered keep their PDFs: a document that was sent does not change
    behind the customer's back. New and edited invoices are rendered with the new look.
    """
    InvoiceSettings.load()
    row = InvoiceSettings.objects.select_for_update().get(pk=InvoiceSettings.SINGLETON_ID)
    before = {name: str(getattr(row, name)) for name in BRANDING_FIELDS}
    errors: dict[str, list[ValidationError]] = {}
    if brand_colour is not None:
        try:
            row.brand_colour = validate_brand_colour(brand_colour)
        except ValidationError as error:
            errors.setdefault("brand_colour", []).append(error)
    if pdf_template is not None:
        if pdf_template not in InvoiceSettings.PdfTemplate.values:
            errors.setdefault("pdf_template", []).append(ValidationError(
                f"Choose one of the templates: {', '.join(InvoiceSettings.PdfTemplate.labels)}."))
        else:
            row.pdf_template = pdf_template
    kind = None
    if logo is not None:
        try:
            kind = logo_kind(logo)
        except ValidationError as error:
            errors.setdefault("logo", []).append(error)
    if errors:
        raise ValidationError(errors)
    old_name = row.logo.name if row.logo else ""
    if kind is not None:
        # The storage name comes from InvoiceSettings.logo's upload_to: <schema>/branding/logo-<random>.<kind>
        row.logo.save(f"logo{LOGO_SUFFIXES[kind]}", ContentFile(logo), save=False)
    elif remove_logo:
        row.logo = ""
    row.save()
    new_name = row.logo.name if row.logo else ""
    if old_name and old_name != new_name:
        transaction.on_commit(lambda: default_storage.delete(old_name))
    after = {name: str(getattr(row, name)) for name in BRANDING_FIELDS}
    changed = [name for name in BRANDING_FIELDS if before[name] != after[name]]
    if changed:
        audit_record(actor=acting_user, action="invoice_branding_updated", obj=row,
                     before={name: before[name] for name in changed}, after={name: after[name] for name in changed})
    return row


def logo_data_uri(row: InvoiceSettings) -> str | None:
    """The logo as a ``data:`` URI for the PDF and the print page, or None."""
    if not row.logo:
        return None
    return _data_uri(row.logo.name)


@lru_cache(maxsize=16)
def _data_uri(name: str) -> str | None:
    # A storage name is never reused for other content (it has a random part), so caching by name is safe.
    try:
        with default_storage.open(name, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        return None
    try:
        kind = logo_kind(content)
    except ValidationError:
        return None
    return f"data:{LOGO_MEDIA_TYPES[kind]};base64,{base64.b64encode(content).decode('ascii')}"


def text_colour_on(hex_colour: str) -> str:
    """Black or white, whichever reads better on ``hex_colour`` (WCAG relative luminance)."""
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.179 else "#FFFFFF"
