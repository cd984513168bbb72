"""The ``settings`` section: invoice numbering and defaults, time approval."""
from __future__ import annotations

from contracts.rules.taxes import parse_codes
from invoices import services as invoice_services
from invoices.models import InvoiceSettings
from msp_billing.tenants.services import msp_update_preferences
from msp_billing.tenants.today import current_msp
from onboarding.importing.core import ImportCore, RecordFailed
from tickets import services as ticket_services

# ``settings``: invoice numbering and defaults (``invoices.services.invoice_settings_update``).
INVOICE_SETTING_FIELDS = (
    "number_prefix", "number_padding", "number_yearly_reset", "credit_note_prefix", "default_payment_terms_days",
    "default_discount_percent", "default_surcharge_percent", "terms", "payment_instructions", "footer",
)


class SettingsSection(ImportCore):
    # -- settings --

    def import_settings(self) -> None:
        """Invoice numbering and defaults, next numbers and time approval, through the settings pages' services.

        Applied first, so the file's time entries follow the file's time approval setting.
        """
        record = self.doc.get("settings")
        if not isinstance(record, dict) or () in self.blocked or any(p[:1] == ("settings",) for p in self.blocked):
            return  # its schema problems are listed already
        path = ("settings",)
        data = {name: record[name] for name in INVOICE_SETTING_FIELDS if name in record}
        if "default_tax_codes" in record:  # the fallback when neither item, contract nor customer names taxes
            data["default_tax_codes"] = ", ".join(parse_codes(record["default_tax_codes"]))
        for name in ("default_discount_percent", "default_surcharge_percent"):
            if name in data:
                data[name] = self.decimal(data[name])
        config = InvoiceSettings.load()
        changes = {name: value for name, value in data.items() if not self._same(config, name, value)}
        numbering_usable = True
        if changes:
            try:
                self.attempt(path, invoice_services.invoice_settings_update, data=changes, acting_user=self.acting_user)
                self.count("invoice settings", "updated")
            except RecordFailed:
                numbering_usable = False  # next numbers depend on the numbering settings: checked once those are right
        elif data:
            self.count("invoice settings", "unchanged")
        if numbering_usable:
            self._next_numbers(path, record.get("next_numbers") or [])
        if "address" in record and isinstance(record["address"], str):
            self._address(path, record["address"])
        if "time_approval_required" in record:
            required = record["time_approval_required"]
            if required == self.tenant.time_approval_required:
                self.count("time approval setting", "unchanged")
            else:
                try:
                    self.attempt(path, ticket_services.time_approval_switch, required=required, acting_user=self.acting_user)
                    self.count("time approval setting", "updated")
                except RecordFailed:
                    pass
                self.tenant = current_msp()

    def _address(self, path: tuple, address: str) -> None:
        """The MSP's postal address (Settings → Your MSP)."""
        if address.strip() == self.tenant.address:
            self.count("MSP address", "unchanged")
            return
        try:
            self.attempt(path, msp_update_preferences, msp_id=self.tenant.pk, name=self.tenant.name,
                         timezone=self.tenant.timezone, address=address)
            self.count("MSP address", "updated")
        except RecordFailed:
            return
        self.tenant = current_msp()

    def _next_numbers(self, path: tuple, items: list) -> None:
        yearly = InvoiceSettings.load().number_yearly_reset
        seen: dict = {}
        for index, item in enumerate(items):
            where = (*path, "next_numbers", index)
            series, year = item["series"], item.get("year")
            if yearly and year is None:
                self.problem((*where, "year"), "is required: invoice numbers restart each year, so give the year "
                                               "this next number is for")
                continue
            if not yearly and year is not None:
                self.problem((*where, "year"), "numbers do not restart each year (number_yearly_reset is false): "
                                               "leave the year out")
                continue
            if not self.unique_in_file(seen, (series, year), where, f"the next {series.replace('_', ' ')} number"
                                       + (f" for {year}" if year else "")):
                continue
            if invoice_services.next_number_of(series=series, year=year) == item["next_number"]:
                self.count("next numbers", "unchanged")
                continue
            try:
                self.attempt(where, invoice_services.invoice_numbering_set_next, series=series, year=year,
                             next_number=item["next_number"], acting_user=self.acting_user)
                self.count("next numbers", "updated")
            except RecordFailed:
                pass
