"""The ``customers`` section."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from contracts import services as contract_services
from contracts.models import Customer
from contracts.services.contacts import contacts_of, contacts_parse
from onboarding.importing.core import ImportCore, RecordFailed
from onboarding.importing.document import natural_key


class CustomersSection(ImportCore):
    # -- customers --

    CUSTOMER_FIELDS = ("display_name", "billing_email", "billing_contacts", "address", "currency", "tax_exempt",
                       "tax_id", "payment_terms_days", "region", "is_active", "tax_codes", "tax_exemption_reason",
                       "tax_exemption_certificate", "tax_exemption_expires", "reverse_charge")

    def import_customers(self) -> None:
        records = list(self.records("customers"))
        # Parents first: a site refers to a top-level customer, which may come later in the file.
        ordered = [item for item in records if "parent" not in item[1]] + [item for item in records if "parent" in item[1]]
        for path, record, name in self.keyed_records("customers", "legal_name", "customer", records=ordered):
            try:
                data = {key: record[key] for key in self.CUSTOMER_FIELDS if key in record}
                if data.get("tax_exemption_expires") is not None:
                    data["tax_exemption_expires"] = self.date(data["tax_exemption_expires"])
                if "parent" in record:
                    data["parent"] = self.lookup(self.customers, "customer", record["parent"], (*path, "parent"), "customer")
                if self.customers.get(natural_key(name)) is None:
                    data.setdefault("currency", self.tenant.currency)
                self.upsert(path, self.customers, name, data, counted="customers",
                            create=contract_services.customer_create, create_args={"legal_name": name},
                            update=contract_services.customer_update, object_name="customer", same=self._customer_same)
            except RecordFailed:
                self.fail("customer", name)

    def _customer_same(self, customer: Customer, name: str, value: Any) -> bool:
        if name == "parent":
            return customer.parent_id == value.pk
        if name == "billing_contacts":
            try:
                return contacts_of(customer) == contacts_parse(value)
            except ValidationError:
                return False  # the service reports the problem
        if name == "billing_email":
            return customer.billing_email == value.strip().lower()
        return self._same(customer, name, value)
