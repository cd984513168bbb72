"""A small, complete import file (schema alpha, currency EUR) that the tests change one value at a time."""
from __future__ import annotations

import copy

TECH = "technician@alpha.example"  # exists in alpha, without a role profile yet
NEW_TECH = "new.tech@alpha.example"  # does not exist: the import creates it

_DOCUMENT = {
    "format": "msp-billing-import",
    "version": 1,
    "work_types": [
        {"name": "Remote Support"},
        {"name": "Onsite Support"},
        {"name": "Out-of-Hours Support", "is_after_hours": True, "after_hours_multiplier": "1.5"},
        {"name": "Project Work"},
    ],
    "roles": [
        {"name": "Engineer", "default_rate": "100.00", "cost_rate": "40.00"},
        {"name": "Architect", "default_rate": "160.00", "cost_rate": "70.00"},
    ],
    "rate_items": [{"name": "Remote Labour", "rate": "95.00", "accounting_code": "4000"}],
    "products": [
        {"sku": "M365-BP", "name": "Microsoft 365 Business Premium", "price": "20.60", "cost": "17.00"},
        {"sku": "SSD-1TB", "name": "SSD 1 TB", "price": "129.00", "cost": "80.00"},
    ],
    "tax_rates": [
        {"code": "VAT19", "name": "USt", "percent": "19", "effective_from": "2026-01-01"},
    ],
    "exclusion_sets": [
        {"name": "Gold", "work_types": ["Onsite Support", "Out-of-Hours Support"]},
        {"name": "Silver", "work_types": ["Out-of-Hours Support"]},
    ],
    "technicians": [
        {"email": TECH, "role": "Engineer"},
        {"email": NEW_TECH, "role": "Architect", "full_name": "Nora New"},
    ],
    "customers": [
        {"legal_name": "Chain Site Berlin GmbH", "parent": "Chain GmbH"},
        {"legal_name": "Chain GmbH", "display_name": "Chain", "billing_email": "ap@chain.example",
         "payment_terms_days": 14, "default_hourly_contract": "chain-hourly"},
        {"legal_name": "Monitor AG"},
        {"legal_name": "Backup KG"},
        {"legal_name": "Project SE"},
    ],
    "contracts": [
        {"ref": "chain-retainer", "customer": "Chain GmbH", "name": "Managed Services", "type": "retainer",
         "start_date": "2026-01-01", "priority": 1, "exclusion_set": "Gold", "fee": "1000.00",
         "rounding_increment": 1,
         "service_lines": [{"product": "M365-BP", "quantity": "25", "effective_from": "2026-01-01"}],
         "billed_through": "2026-02-28"},
        {"ref": "chain-block", "customer": "Chain GmbH", "name": "Onsite Block", "type": "block_hours",
         "start_date": "2026-01-01", "priority": 2, "exclusion_set": "Silver", "overage_rate": "150",
         "rounding_increment": 1,
         "blocks": [{"purchased_on": "2026-01-01", "hours": "10", "price": "1100.00"}]},
        {"ref": "chain-hourly", "customer": "Chain GmbH", "name": "Hourly T&M", "type": "hourly",
         "start_date": "2026-01-01", "priority": 3, "rounding_increment": 15,
         "rate_lines": [{"rate": "120.00", "effective_from": "2026-01-01"},
                        {"work_type": "Out-of-Hours Support", "role": "Engineer", "rate": "130.00",
                         "effective_from": "2026-01-01"}]},
        {"ref": "monitor-rmm", "customer": "Monitor AG", "name": "RMM", "type": "remote_monitoring",
         "start_date": "2026-01-01",
         "device_classes": [{"name": "Servers", "unit_price": "45.00",
                             "counts": [{"effective_date": "2026-01-01", "count": 3},
                                        {"effective_date": "2026-02-15", "count": 4}]}]},
        {"ref": "backup", "customer": "Backup KG", "name": "Cloud Backup", "type": "online_backup",
         "start_date": "2026-01-01", "unit_price": "0.12", "included_quantity": "100", "usage_unit": "GB",
         "usage_records": [{"measured_on": "2026-01-31", "quantity": "250.5"}]},
        {"ref": "money", "customer": "Backup KG", "name": "Prepaid Support", "type": "block_money",
         "start_date": "2026-01-01",
         "rate_lines": [{"rate": "100.00", "effective_from": "2026-01-01"}],
         "blocks": [{"purchased_on": "2026-01-01", "amount": "2000.00", "price": "2000.00"}]},
        {"ref": "project-hourly", "customer": "Project SE", "name": "ERP Migration", "type": "project_hourly",
         "start_date": "2026-01-01", "budget_minutes": 6000,
         "rate_lines": [{"rate": "140.00", "effective_from": "2026-01-01"}]},
        {"ref": "project-fee", "customer": "Project SE", "name": "Firewall Rollout", "type": "project_one_time_fee",
         "start_date": "2026-01-01", "fee": "9000.00", "fee_trigger": "milestones",
         "milestones": [{"name": "Design", "percent": "40", "due_date": "2026-02-01", "completed_on": "2026-02-03"},
                        {"name": "Handover", "percent": "60", "due_date": "2026-04-01"}]},
    ],
    "tickets": [
        {"ref": "T-1", "customer": "Chain GmbH", "title": "Mail server slow", "status": "closed",
         "resolved_on": "2026-03-05", "technician": TECH, "billed": "2026-03-31"},
        {"ref": "T-2", "customer": "Chain GmbH", "title": "New printer", "status": "resolved"},
        {"ref": "T-3", "customer": "Chain Site Berlin GmbH", "title": "Switch replacement"},
        {"ref": "T-4", "customer": "Project SE", "title": "Migrate ERP database", "default_contract": "project-hourly"},
    ],
    "time_entries": [
        {"ticket": "T-1", "technician": TECH, "work_type": "Remote Support", "date": "2026-03-03", "minutes": 45,
         "notes": "Checked queues"},
        {"ticket": "T-2", "technician": TECH, "work_type": "Onsite Support", "date": "2026-03-03", "hours": "1"},
        {"ticket": "T-2", "technician": TECH, "work_type": "Out-of-Hours Support", "date": "2026-03-03",
         "started_at": "2026-03-03T20:00:00", "ended_at": "2026-03-03T20:30:00"},
        {"ticket": "T-3", "technician": NEW_TECH, "work_type": "Remote Support", "date": "2026-03-04", "minutes": 20},
        {"ticket": "T-4", "technician": NEW_TECH, "work_type": "Project Work", "date": "2026-03-04", "minutes": 90},
    ],
    "charges": [
        {"ticket": "T-1", "product": "SSD-1TB", "date": "2026-03-03"},
        {"ticket": "T-2", "description": "Parking", "date": "2026-03-03", "unit_price": "8.50", "is_expense": True},
        {"contract": "chain-retainer", "description": "Licence true-up", "date": "2026-03-01", "quantity": "2",
         "unit_price": "20.60", "billed": "2026-03-01"},
    ],
}


def document() -> dict:
    return copy.deepcopy(_DOCUMENT)
