"""Billing contacts become rows (to / cc) instead of free text on the customer.

The text's e-mail addresses are carried over as "to" contacts, with the rest of their line
as the name. A text without any address (such as "Dana Reyes (practice manager)") names
the customer's billing e-mail, when it has one; otherwise there is nobody to write to and
it is not kept.
"""
import re

import django.db.models.deletion
from django.db import migrations, models

ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _contacts(text: str, billing_email: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    loose: list[str] = []
    for line in text.splitlines():
        addresses = ADDRESS.findall(line)
        if not addresses:
            if line.strip():
                loose.append(line.strip())
            continue
        name = ADDRESS.sub("", line).strip(" \t<>,;:()\"'")
        for address in addresses:
            found.append((address.lower(), name[:200] if len(addresses) == 1 else ""))
    if loose and billing_email and billing_email.lower() not in {email for email, _ in found}:
        found.insert(0, (billing_email.lower(), "; ".join(loose)[:200]))
    unique: dict[str, str] = {}
    for email, name in found:
        unique.setdefault(email, name)
    return list(unique.items())


def carry_over(apps, schema_editor):
    Customer = apps.get_model("contracts", "Customer")
    BillingContact = apps.get_model("contracts", "BillingContact")
    rows = []
    for customer in Customer.objects.exclude(billing_contacts="").iterator():
        for position, (email, name) in enumerate(_contacts(customer.billing_contacts, customer.billing_email)):
            rows.append(BillingContact(customer_id=customer.pk, email=email, name=name, kind="to", position=position))
    BillingContact.objects.bulk_create(rows)


def carry_back(apps, schema_editor):
    Customer = apps.get_model("contracts", "Customer")
    BillingContact = apps.get_model("contracts", "BillingContact")
    for customer in Customer.objects.filter(billing_contacts_rows__isnull=False).distinct():
        lines = [f"{'cc: ' if c.kind == 'cc' else ''}{c.name + ' <' + c.email + '>' if c.name else c.email}"
                 for c in BillingContact.objects.filter(customer=customer).order_by("position", "pk")]
        Customer.objects.filter(pk=customer.pk).update(billing_contacts="\n".join(lines))


class Migration(migrations.Migration):

    dependencies = [
        ("contracts", "0002_tax_categories_and_jurisdictions"),
    ]

    operations = [
        migrations.CreateModel(
            name="BillingContact",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.EmailField(help_text="Stored in lower case.", max_length=254)),
                ("name", models.CharField(blank=True, max_length=200)),
                ("kind", models.CharField(choices=[("to", "To"), ("cc", "Cc")], default="to", max_length=2)),
                ("position", models.SmallIntegerField(default=0)),
                ("customer", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                               related_name="billing_contacts_rows", to="contracts.customer")),
            ],
            options={"ordering": ["customer", "position", "pk"]},
        ),
        migrations.AddConstraint(
            model_name="billingcontact",
            constraint=models.UniqueConstraint(fields=("customer", "email"), name="billing_contact_once_per_customer"),
        ),
        migrations.AddConstraint(
            model_name="billingcontact",
            constraint=models.CheckConstraint(condition=models.Q(("kind__in", ("to", "cc"))), name="billing_contact_kind"),
        ),
        migrations.AddConstraint(
            model_name="billingcontact",
            constraint=models.CheckConstraint(condition=models.Q(("position__gte", 0)),
                                              name="billing_contact_position_not_negative"),
        ),
        migrations.RunPython(carry_over, carry_back),
        migrations.RemoveField(model_name="customer", name="billing_contacts"),
        migrations.AlterField(
            model_name="customer", name="billing_email",
            field=models.EmailField(blank=True, help_text="Invoices go to this address, and to the billing contacts.",
                                    max_length=254),
        ),
        migrations.AlterField(
            model_name="billingcontact", name="customer",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="billing_contacts",
                                    to="contracts.customer"),
        ),
    ]
