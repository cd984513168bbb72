"""Write demo.json: the demo MSP's customers, contracts and three months of work.

    python onboarding/demo_data/generate.py          # rewrite demo.json
    python onboarding/demo_data/generate.py --check  # exit 1 if demo.json is not what this script writes

Deterministic (a seeded random generator, fixed dates from 2026-08-01 to 2026-10-31), so
the demo and the tests that load it are stable. Plain Python: no Django needed. The
format is docs/import-format.md; amounts are in US dollars (the demo MSP's currency).
"""
from __future__ import annotations

import datetime as dt
import json
import random
import sys
from pathlib import Path

OUTPUT = Path(__file__).with_name("demo.json")
FIRST_DAY = dt.date(2026, 8, 1)
LAST_DAY = dt.date(2026, 10, 31)
CONTRACT_START = "2026-01-01"
# Blocks bought before October were invoiced when bought; October bills only what they do not cover.
BLOCKS_BILLED_THROUGH = "2026-09-30"
SEED = 20260801

REMOTE, ONSITE, OOH = "Remote Support", "Onsite Support", "Out-of-Hours Support"
INSTALL, PROJECT, EMERGENCY = "New Installation", "Project Work", "Emergency Callout"
MAINTENANCE, INTERNAL = "Routine Maintenance", "Internal Admin"

CHAIN = "Hudson Valley Dental Group LLC"

TECHNICIANS = [
    # The demo MSP already has tech1 and tech2 (msp_billing/tenants/demo.py); the import adds the others.
    ("tech1@demo.example", "Tom Technician", "Tier 1"),
    ("tech2@demo.example", "Tess Technician", "Engineer"),
    ("tech3@demo.example", "Theo Tran", "Tier 1"),
    ("tech4@demo.example", "Tara Okafor", "Engineer"),
    ("tech5@demo.example", "Aaron Patel", "Architect"),
]

TOPICS = {
    REMOTE: ["Outlook keeps asking for password", "VPN drops every few minutes", "Printer shows offline",
             "New user onboarding", "Password reset and MFA re-enrolment", "Shared drive permissions",
             "Teams calls have no audio", "Laptop running slow", "Phishing e-mail reported", "OneDrive not syncing",
             "Scanner to e-mail stopped working", "Browser certificate warning", "Mailbox almost full",
             "Leaver: disable account and archive mailbox", "QuickBooks will not open"],
    ONSITE: ["Replace failed network switch", "Set up new workstations", "Conference room display not working",
             "Re-patch network cabinet", "UPS battery replacement", "Wi-Fi dead spot in back office",
             "Move desks and phones", "Label printer installation"],
    OOH: ["Server unreachable overnight", "Weekend patch window", "Firewall outage after hours",
          "Evening backup failure", "Weekend email outage"],
    INSTALL: ["Install new multifunction printer", "Deploy new firewall", "Install door-access controller"],
    PROJECT: ["ERP migration: database move", "ERP migration: user acceptance testing", "Data platform: pipelines",
              "Data platform: dashboards", "ERP migration: cut-over planning"],
    EMERGENCY: ["Ransomware alert on file server", "Core switch failure", "Power cut: servers down"],
    MAINTENANCE: ["Monthly patching", "Quarterly backup restore test", "Firmware updates", "Disk cleanup on servers"],
}
NOTES = {
    REMOTE: ["Remote session with user; fixed and tested.", "Reset credentials, re-enrolled MFA.",
             "Cleared cached credentials and rebuilt profile.", "Adjusted permissions and confirmed with manager.",
             "Checked logs, applied fix, monitored."],
    ONSITE: ["On site: replaced hardware and tested.", "On site with office manager; cabling tidied.",
             "Installed and configured devices on site."],
    OOH: ["Called out after hours; service restored.", "Patched and rebooted during the maintenance window.",
          "Investigated alert overnight; restarted services."],
    INSTALL: ["Unboxed, mounted and configured.", "Configured and handed over to staff."],
    PROJECT: ["Project work per plan.", "Workshop with stakeholders.", "Migration tasks completed."],
    EMERGENCY: ["Emergency response; isolated systems and restored service."],
    MAINTENANCE: ["Routine maintenance completed; no issues found.", "Updates applied; reboot scheduled."],
}


def _customers() -> list[dict]:
    def customer(legal, display, city, *, parent=None, email=None, **extra):
        record = {"legal_name": legal, "display_name": display,
                  "address": f"{100 + len(legal) * 7} Main Street\n{city}",
                  "region": "New York" if city.endswith("NY") else "New Jersey",
                  "billing_email": email or f"accounts@{display.lower().replace(' ', '').replace('&', '')[:18]}.example"}
        if parent:
            record["parent"] = parent
        record.update(extra)
        return record

    return [
        customer(CHAIN, "Hudson Valley Dental", "Newburgh, NY", default_hourly_contract="hvd-hourly",
                 billing_contacts=[{"email": "dana.reyes@hudsonvalleydental.example", "name": "Dana Reyes (practice manager)"},
                                   {"email": "controller@hudsonvalleydental.example", "name": "Controller", "kind": "cc"}]),
        customer("Hudson Valley Dental Group LLC — Kingston Office", "HVD Kingston", "Kingston, NY", parent=CHAIN),
        customer("Hudson Valley Dental Group LLC — Poughkeepsie Office", "HVD Poughkeepsie", "Poughkeepsie, NY",
                 parent=CHAIN),
        customer("Brightwater Logistics Inc.", "Brightwater Logistics", "Newark, NJ", default_hourly_contract="bwl-hourly"),
        customer("Carver & Stone LLP", "Carver & Stone", "White Plains, NY", default_hourly_contract="cs-hourly",
                 payment_terms_days=15),
        customer("Maple Ridge Veterinary Clinic PLLC", "Maple Ridge Vet", "Beacon, NY", default_hourly_contract="mrv-hourly"),
        customer("Northgate Manufacturing Co.", "Northgate Manufacturing", "Paterson, NJ",
                 default_hourly_contract="ngm-hourly", payment_terms_days=45),
        customer("Northgate Manufacturing Co. — Plant 2", "Northgate Plant 2", "Clifton, NJ",
                 parent="Northgate Manufacturing Co."),
        customer("Summit Realty Partners LLC", "Summit Realty", "Yonkers, NY", default_hourly_contract="srp-hourly"),
        customer("Riverside Family Medicine PC", "Riverside Family Medicine", "Peekskill, NY",
                 default_hourly_contract="rfm-hourly"),
        customer("Ironclad Security Services Inc.", "Ironclad Security", "Hoboken, NJ", default_hourly_contract="isc-hourly"),
        customer("Bluebird Bakery & Cafe LLC", "Bluebird Bakery", "Cold Spring, NY", default_hourly_contract="bbc-hourly",
                 payment_terms_days=14),
        customer("Evergreen Accounting Associates CPA PC", "Evergreen Accounting", "Nyack, NY",
                 default_hourly_contract="eaa-hourly"),
        customer("Lakeshore Community Church", "Lakeshore Church", "Mahopac, NY", default_hourly_contract="lcc-hourly",
                 tax_exempt=True, tax_id="EIN 14-1234567"),
        customer("Pioneer Construction Group Inc.", "Pioneer Construction", "Morristown, NJ"),
        customer("Crescent Hotel Management LLC", "Crescent Hotels", "Jersey City, NJ", default_hourly_contract="chm-hourly"),
        customer("Crescent Hotel Management LLC — Midtown", "Crescent Midtown", "Jersey City, NJ",
                 parent="Crescent Hotel Management LLC"),
        customer("Crescent Hotel Management LLC — Harbor", "Crescent Harbor", "Bayonne, NJ",
                 parent="Crescent Hotel Management LLC"),
        customer("Quantum Analytics Inc.", "Quantum Analytics", "Princeton, NJ", default_hourly_contract="qa-hourly"),
        customer("Redwood Insurance Brokers Inc.", "Redwood Insurance", "Scarsdale, NY", default_hourly_contract="rib-hourly"),
        customer("Silverline Architects PLLC", "Silverline Architects", "Montclair, NJ", default_hourly_contract="sla-hourly"),
        customer("Tri-County School District", "Tri-County Schools", "Carmel, NY", default_hourly_contract="tcs-hourly",
                 tax_exempt=True, payment_terms_days=60),
        customer("Union Square Fitness LLC", "Union Square Fitness", "Hackensack, NJ", default_hourly_contract="usf-hourly"),
        customer("Westbrook Auto Group Inc.", "Westbrook Auto", "Middletown, NY", default_hourly_contract="wag-hourly"),
        customer("Zephyr Marketing Studio LLC", "Zephyr Marketing", "Red Bank, NJ"),
    ]


def _hourly(ref, customer, rate, *, priority=9, name="Hourly T&M", ooh_rate=None, **extra):
    lines = [{"rate": rate, "effective_from": CONTRACT_START}]
    if ooh_rate:
        lines.append({"work_type": OOH, "rate": ooh_rate, "effective_from": CONTRACT_START})
    return {"ref": ref, "customer": customer, "name": name, "type": "hourly", "start_date": CONTRACT_START,
            "priority": priority, "rounding_increment": 15, "rounding_direction": "up", "rounding_minimum": 15,
            "rate_lines": lines, **extra}


def _contracts() -> list[dict]:
    m365 = {"product": "M365-BP", "effective_from": CONTRACT_START}
    return [
        # The worked example of docs/design.md § Routing: Retainer (excludes Onsite, Out-of-Hours) → Block Hours
        # (excludes Out-of-Hours) → Hourly.
        {"ref": "hvd-retainer", "customer": CHAIN, "name": "Managed Services Gold", "type": "retainer",
         "start_date": CONTRACT_START, "end_date": "2026-12-31", "auto_renew": True, "renewal_notice_days": 60,
         "priority": 1, "exclusion_set": "Gold", "fee": "2450.00", "rounding_increment": 6,
         "rounding_direction": "nearest", "billed_through": "2026-09-30",
         "rate_lines": [{"rate": "125.00", "effective_from": CONTRACT_START}],
         "service_lines": [{**m365, "quantity": "32"}]},
        {"ref": "hvd-block", "customer": CHAIN, "name": "Onsite Block Hours", "type": "block_hours",
         "start_date": CONTRACT_START, "billed_through": BLOCKS_BILLED_THROUGH, "priority": 2, "exclusion_set": "Silver", "overage_rate": "165.00",
         "rounding_increment": 15, "alert_thresholds": [75, 90, 100],
         "rate_lines": [{"rate": "135.00", "effective_from": CONTRACT_START}],
         "blocks": [{"purchased_on": "2026-07-01", "hours": "16", "price": "2160.00"}]},
        _hourly("hvd-hourly", CHAIN, "150.00", priority=3),

        {"ref": "bwl-fund", "customer": "Brightwater Logistics Inc.", "name": "Prepaid Support Fund",
         "type": "block_money", "start_date": CONTRACT_START, "priority": 1, "cascade": True,
         "billed_through": BLOCKS_BILLED_THROUGH,
         "rate_lines": [{"rate": "140.00", "effective_from": CONTRACT_START},
                        {"work_type": ONSITE, "rate": "160.00", "effective_from": CONTRACT_START}],
         "blocks": [{"purchased_on": "2026-08-01", "amount": "6000.00", "price": "6000.00"}]},
        _hourly("bwl-hourly", "Brightwater Logistics Inc.", "150.00"),

        {"ref": "cs-retainer", "customer": "Carver & Stone LLP", "name": "Legal Practice Care", "type": "retainer",
         "start_date": CONTRACT_START, "priority": 1, "exclusion_set": "Bronze", "fee": "1800.00",
         "included_minutes": 600, "overage_rate": "135.00", "billed_through": "2026-08-31",
         "rate_lines": [{"rate": "135.00", "effective_from": CONTRACT_START}]},
        {"ref": "cs-rmm", "customer": "Carver & Stone LLP", "name": "Monitoring & Patching",
         "type": "remote_monitoring", "start_date": CONTRACT_START, "priority": 2, "exclusion_set": "Bronze",
         "billed_through": "2026-08-31",
         "device_classes": [
             {"name": "Servers", "unit_price": "55.00", "counts": [{"effective_date": CONTRACT_START, "count": 2}]},
             {"name": "Workstations", "unit_price": "14.00",
              "counts": [{"effective_date": CONTRACT_START, "count": 24}, {"effective_date": "2026-09-15", "count": 27}]},
         ]},
        _hourly("cs-hourly", "Carver & Stone LLP", "155.00", ooh_rate="175.00"),

        _hourly("mrv-hourly", "Maple Ridge Veterinary Clinic PLLC", "125.00"),

        {"ref": "ngm-erp", "customer": "Northgate Manufacturing Co.", "name": "ERP Server Migration",
         "type": "project_hourly", "start_date": "2026-07-15", "end_date": "2026-12-31", "priority": 5,
         "exclusion_set": "Projects only", "budget_minutes": 120 * 60, "budget_amount": "18000.00", "alert_thresholds": [50, 75, 90, 100],
         "rounding_increment": 15,
         "rate_lines": [{"rate": "155.00", "effective_from": "2026-07-15"}]},
        _hourly("ngm-hourly", "Northgate Manufacturing Co.", "140.00", ooh_rate="160.00"),

        {"ref": "srp-backup", "customer": "Summit Realty Partners LLC", "name": "Cloud Backup", "type": "online_backup",
         "start_date": CONTRACT_START, "billing_timing": "arrears", "unit_price": "0.15", "included_quantity": "250",
         "usage_unit": "GB",
         "usage_records": [{"measured_on": "2026-08-31", "quantity": "812.400"},
                           {"measured_on": "2026-09-30", "quantity": "845.750"},
                           {"measured_on": "2026-10-31", "quantity": "871.200"}]},
        {"ref": "srp-retainer", "customer": "Summit Realty Partners LLC", "name": "Managed Desktop Silver",
         "type": "retainer", "start_date": CONTRACT_START, "priority": 1, "exclusion_set": "Silver", "fee": "950.00",
         "rate_lines": [{"rate": "120.00", "effective_from": CONTRACT_START}],
         "service_lines": [{"product": "M365-BS", "quantity": "12", "effective_from": CONTRACT_START}]},
        _hourly("srp-hourly", "Summit Realty Partners LLC", "135.00"),

        {"ref": "rfm-rmm", "customer": "Riverside Family Medicine PC", "name": "Monitoring & Patching",
         "type": "remote_monitoring", "start_date": CONTRACT_START, "priority": 1, "exclusion_set": "Bronze",
         "billed_through": "2026-09-30",
         "device_classes": [
             {"name": "Servers", "unit_price": "55.00", "counts": [{"effective_date": CONTRACT_START, "count": 3}]},
             {"name": "Workstations", "unit_price": "14.00", "counts": [{"effective_date": CONTRACT_START, "count": 38}]},
             {"name": "Network devices", "unit_price": "9.00", "counts": [{"effective_date": CONTRACT_START, "count": 6}]},
         ]},
        {"ref": "rfm-block", "customer": "Riverside Family Medicine PC", "name": "Support Block 10h",
         "type": "block_hours", "start_date": CONTRACT_START, "priority": 2, "cascade": True, "overage_rate": "150.00",
         "block_expiry_months": 12, "billed_through": BLOCKS_BILLED_THROUGH, "rounding_increment": 15,
         "rate_lines": [{"rate": "130.00", "effective_from": CONTRACT_START}],
         "blocks": [{"purchased_on": "2026-06-01", "hours": "10", "price": "1250.00"},
                    {"purchased_on": "2026-09-01", "hours": "10", "price": "1250.00"}]},
        _hourly("rfm-hourly", "Riverside Family Medicine PC", "145.00"),

        {"ref": "isc-cameras", "customer": "Ironclad Security Services Inc.", "name": "Camera System Rollout",
         "type": "project_one_time_fee", "start_date": "2026-07-01", "end_date": "2026-11-30", "priority": 5,
         "exclusion_set": "Projects only", "fee": "18000.00", "fee_trigger": "milestones",
         "milestones": [{"name": "Design approved", "percent": "30", "due_date": "2026-08-15", "completed_on": "2026-08-14"},
                        {"name": "Cameras installed", "percent": "50", "due_date": "2026-09-30",
                         "completed_on": "2026-10-02"},
                        {"name": "Handover and training", "percent": "20", "due_date": "2026-11-15"}]},
        _hourly("isc-hourly", "Ironclad Security Services Inc.", "140.00"),

        _hourly("bbc-hourly", "Bluebird Bakery & Cafe LLC", "110.00", rounding_increment=30),

        {"ref": "eaa-retainer", "customer": "Evergreen Accounting Associates CPA PC", "name": "Tax Season Care",
         "type": "retainer", "start_date": CONTRACT_START, "billing_frequency": "quarterly", "priority": 1,
         "exclusion_set": "Gold", "fee": "3600.00", "billed_through": "2026-09-30",
         "rate_lines": [{"rate": "130.00", "effective_from": CONTRACT_START}]},
        {"ref": "eaa-backup", "customer": "Evergreen Accounting Associates CPA PC", "name": "Microsoft 365 Backup",
         "type": "online_backup", "start_date": CONTRACT_START, "billing_timing": "arrears", "unit_price": "4.00",
         "usage_unit": "seats",
         "usage_records": [{"measured_on": "2026-08-31", "quantity": "18"}, {"measured_on": "2026-09-30", "quantity": "19"},
                           {"measured_on": "2026-10-31", "quantity": "21"}]},
        _hourly("eaa-hourly", "Evergreen Accounting Associates CPA PC", "150.00"),

        _hourly("lcc-hourly", "Lakeshore Community Church", "95.00", name="Non-profit Hourly", taxable=False),

        {"ref": "pcg-block", "customer": "Pioneer Construction Group Inc.", "name": "Field Support Block",
         "type": "block_hours", "start_date": CONTRACT_START, "priority": 1, "overage_rate": "150.00",
         "block_expiry_months": 12, "billed_through": BLOCKS_BILLED_THROUGH, "rounding_increment": 15, "auto_repurchase": False,
         "rate_lines": [{"rate": "125.00", "effective_from": CONTRACT_START}],
         "blocks": [{"purchased_on": "2026-07-15", "hours": "10", "price": "1200.00"}]},

        {"ref": "chm-retainer", "customer": "Crescent Hotel Management LLC", "name": "Hospitality Managed IT",
         "type": "retainer", "start_date": CONTRACT_START, "end_date": "2027-06-30", "auto_renew": True,
         "renewal_term_months": 12, "priority": 1, "exclusion_set": "Gold", "fee": "3200.00",
         "billed_through": "2026-09-30",
         "rate_lines": [{"rate": "130.00", "effective_from": CONTRACT_START}],
         "service_lines": [{**m365, "quantity": "45"}]},
        {"ref": "chm-midtown-rmm", "customer": "Crescent Hotel Management LLC — Midtown", "name": "Midtown Monitoring",
         "type": "remote_monitoring", "start_date": "2026-08-01", "priority": 1, "exclusion_set": "Bronze",
         "device_classes": [
             {"name": "Workstations", "unit_price": "12.00",
              "counts": [{"effective_date": "2026-08-01", "count": 18}, {"effective_date": "2026-10-10", "count": 21}]},
             {"name": "Network devices", "unit_price": "8.00", "counts": [{"effective_date": "2026-08-01", "count": 9}]},
         ]},
        _hourly("chm-hourly", "Crescent Hotel Management LLC", "145.00", ooh_rate="165.00"),

        {"ref": "qa-platform", "customer": "Quantum Analytics Inc.", "name": "Data Platform Build",
         "type": "project_hourly", "start_date": "2026-08-01", "priority": 5,
         "exclusion_set": "Projects only", "budget_amount": "25000.00", "rounding_increment": 15,
         "rate_lines": [{"rate": "175.00", "effective_from": "2026-08-01"}]},
        _hourly("qa-hourly", "Quantum Analytics Inc.", "150.00"),

        {"ref": "rib-retainer", "customer": "Redwood Insurance Brokers Inc.", "name": "Managed Services Silver",
         "type": "retainer", "start_date": CONTRACT_START, "priority": 1, "exclusion_set": "Silver",
         "fee": "1400.00", "rate_lines": [{"rate": "125.00", "effective_from": CONTRACT_START}]},
        _hourly("rib-hourly", "Redwood Insurance Brokers Inc.", "145.00"),

        {"ref": "sla-block", "customer": "Silverline Architects PLLC", "name": "Support Block 15h",
         "type": "block_hours", "start_date": CONTRACT_START, "priority": 1, "exclusion_set": "Silver",
         "overage_rate": "145.00", "cascade": True, "rounding_increment": 15, "billed_through": BLOCKS_BILLED_THROUGH,
         "rate_lines": [{"rate": "130.00", "effective_from": CONTRACT_START}],
         "blocks": [{"purchased_on": "2026-08-01", "hours": "15", "price": "1875.00"}]},
        _hourly("sla-hourly", "Silverline Architects PLLC", "145.00"),

        {"ref": "tcs-fund", "customer": "Tri-County School District", "name": "Prepaid IT Support",
         "type": "block_money", "start_date": "2026-07-01", "end_date": "2027-06-30", "priority": 1, "taxable": False,
         "billed_through": BLOCKS_BILLED_THROUGH,
         "rate_lines": [{"rate": "110.00", "effective_from": "2026-07-01"}],
         "blocks": [{"purchased_on": "2026-07-01", "amount": "10000.00", "price": "10000.00",
                     "expires_on": "2027-06-30"}]},
        _hourly("tcs-hourly", "Tri-County School District", "115.00", taxable=False),

        _hourly("usf-hourly", "Union Square Fitness LLC", "120.00"),

        {"ref": "wag-retainer", "customer": "Westbrook Auto Group Inc.", "name": "Dealership Managed IT",
         "type": "retainer", "start_date": CONTRACT_START, "priority": 1, "exclusion_set": "Gold", "fee": "2100.00",
         "rate_lines": [{"rate": "125.00", "effective_from": CONTRACT_START}]},
        {"ref": "wag-rmm", "customer": "Westbrook Auto Group Inc.", "name": "Monitoring & Patching",
         "type": "remote_monitoring", "start_date": CONTRACT_START, "priority": 2, "exclusion_set": "Bronze",
         "device_classes": [
             {"name": "Servers", "unit_price": "55.00", "counts": [{"effective_date": CONTRACT_START, "count": 2}]},
             {"name": "Workstations", "unit_price": "14.00", "counts": [{"effective_date": CONTRACT_START, "count": 30}]},
         ]},
        _hourly("wag-hourly", "Westbrook Auto Group Inc.", "140.00", ooh_rate="160.00"),

        # Backup only: Zephyr's ticket time has no contract and shows as unrouted on the dashboard.
        {"ref": "zms-backup", "customer": "Zephyr Marketing Studio LLC", "name": "Cloud Backup", "type": "online_backup",
         "start_date": CONTRACT_START, "billing_timing": "arrears", "unit_price": "0.18", "included_quantity": "100",
         "usage_unit": "GB",
         "usage_records": [{"measured_on": "2026-08-31", "quantity": "322.000"},
                           {"measured_on": "2026-09-30", "quantity": "330.500"},
                           {"measured_on": "2026-10-31", "quantity": "341.250"}]},
    ]


# Who works for whom, and on what: (customer, tickets per month, work-type weights, ticket default contract).
PROFILES = [
    (CHAIN, 4, {REMOTE: 5, ONSITE: 3, OOH: 2, MAINTENANCE: 1}, None),
    ("Hudson Valley Dental Group LLC — Kingston Office", 1, {REMOTE: 2, ONSITE: 2}, None),
    ("Hudson Valley Dental Group LLC — Poughkeepsie Office", 1, {REMOTE: 2, ONSITE: 1, OOH: 1}, None),
    ("Brightwater Logistics Inc.", 3, {REMOTE: 4, ONSITE: 3, INSTALL: 1}, None),
    ("Carver & Stone LLP", 3, {REMOTE: 5, ONSITE: 2, OOH: 1, MAINTENANCE: 2}, None),
    ("Maple Ridge Veterinary Clinic PLLC", 2, {REMOTE: 3, ONSITE: 1}, None),
    ("Northgate Manufacturing Co.", 2, {PROJECT: 1}, "ngm-erp"),
    ("Northgate Manufacturing Co. — Plant 2", 1, {REMOTE: 2, ONSITE: 2, EMERGENCY: 1}, None),
    ("Summit Realty Partners LLC", 2, {REMOTE: 4, OOH: 1}, None),
    ("Riverside Family Medicine PC", 3, {REMOTE: 4, ONSITE: 2, MAINTENANCE: 2}, None),
    ("Ironclad Security Services Inc.", 2, {INSTALL: 2, PROJECT: 2}, "isc-cameras"),
    ("Bluebird Bakery & Cafe LLC", 1, {REMOTE: 2, ONSITE: 1}, None),
    ("Evergreen Accounting Associates CPA PC", 2, {REMOTE: 4, ONSITE: 1, OOH: 1}, None),
    ("Lakeshore Community Church", 1, {REMOTE: 2, ONSITE: 1}, None),
    ("Pioneer Construction Group Inc.", 2, {REMOTE: 2, ONSITE: 3, EMERGENCY: 1}, None),
    ("Crescent Hotel Management LLC", 2, {REMOTE: 3, ONSITE: 2, OOH: 2}, None),
    ("Crescent Hotel Management LLC — Midtown", 1, {REMOTE: 2, ONSITE: 1}, None),
    ("Crescent Hotel Management LLC — Harbor", 1, {REMOTE: 2, ONSITE: 2}, None),
    ("Quantum Analytics Inc.", 2, {PROJECT: 1}, "qa-platform"),
    ("Redwood Insurance Brokers Inc.", 2, {REMOTE: 4, OOH: 1, ONSITE: 1}, None),
    ("Silverline Architects PLLC", 2, {REMOTE: 3, ONSITE: 2}, None),
    ("Tri-County School District", 2, {REMOTE: 3, ONSITE: 3, INSTALL: 1}, None),
    ("Union Square Fitness LLC", 1, {REMOTE: 2, ONSITE: 1}, None),
    ("Westbrook Auto Group Inc.", 2, {REMOTE: 4, ONSITE: 2, OOH: 1}, None),
    ("Zephyr Marketing Studio LLC", 1, {REMOTE: 1}, None),
]
# Customers whose closed tickets of August (and, for the first few, September) were billed
# in the MSP's previous system: the demo starts with some history already invoiced.
BILLED_IN_AUGUST = {CHAIN, "Maple Ridge Veterinary Clinic PLLC", "Bluebird Bakery & Cafe LLC",
                    "Lakeshore Community Church", "Union Square Fitness LLC", "Carver & Stone LLP",
                    "Brightwater Logistics Inc."}
BILLED_IN_SEPTEMBER = {"Maple Ridge Veterinary Clinic PLLC", "Bluebird Bakery & Cafe LLC", "Lakeshore Community Church"}

MINUTES = [15, 20, 30, 30, 45, 45, 60, 60, 75, 90, 120, 150, 180, 240, 7, 12, 23, 38, 52]


def _weekday_on_or_after(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def _tickets_and_time(rng: random.Random) -> tuple[list[dict], list[dict], list[dict]]:
    tickets: list[dict] = []
    entries: list[dict] = []
    charges: list[dict] = []
    number = 1000
    months = [(2026, 8), (2026, 9), (2026, 10)]
    for customer, per_month, mix, default_contract in PROFILES:
        titles: set[str] = set()
        for year, month in months:
            for _ in range(per_month):
                number += 1
                kind = _pick(rng, mix)
                opened = _weekday_on_or_after(dt.date(year, month, rng.randint(1, 26)))
                title = rng.choice(TOPICS[kind])
                if title in titles:
                    title = f"{title} ({opened:%b} {opened.day})"
                while title in titles:
                    title += " (follow-up)"
                titles.add(title)
                lead = rng.choice(TECHNICIANS)[0]
                ticket = {"ref": f"T-{number}", "customer": customer, "title": title, "technician": lead}
                if default_contract:
                    ticket["default_contract"] = default_contract
                last_day = opened
                for step in range(rng.choice([1, 1, 2, 2, 3, 4])):
                    work = kind if step == 0 else _pick(rng, mix)
                    day = opened + dt.timedelta(days=rng.randint(0, 6) if step else 0)
                    if day > LAST_DAY:
                        day = LAST_DAY
                    entry = {"ticket": ticket["ref"], "technician": lead if step == 0 else rng.choice(TECHNICIANS)[0],
                             "work_type": work, "date": day.isoformat(), "notes": rng.choice(NOTES[work])}
                    if work in (OOH, EMERGENCY):
                        # Evenings and weekends, with clock times: after hours by the MSP's business hours.
                        if rng.random() < 0.5:
                            day = day + dt.timedelta(days=(5 - day.weekday()) % 7)
                            day = min(day, LAST_DAY)
                        start = dt.datetime.combine(day, dt.time(rng.choice([19, 20, 21]), rng.choice([0, 15, 30])))
                        end = start + dt.timedelta(minutes=rng.choice([30, 45, 60, 90, 120]))
                        entry.update(date=day.isoformat(), started_at=start.isoformat(timespec="minutes"),
                                     ended_at=end.isoformat(timespec="minutes"))
                    else:
                        day = _weekday_on_or_after(day) if day.weekday() >= 5 and day + dt.timedelta(days=2) <= LAST_DAY else day
                        entry["date"] = day.isoformat()
                        entry["minutes"] = rng.choice(MINUTES)
                    if rng.random() < 0.05:
                        entry["billable"] = False
                        entry["notes"] += " Goodwill: not billed."
                    last_day = max(last_day, dt.date.fromisoformat(entry["date"]))
                    entries.append(entry)
                # Parts and expenses.
                if kind in (ONSITE, INSTALL) and rng.random() < 0.45:
                    sku = rng.choice(["SSD-1TB", "DOCK-USBC", "CAT6-5M", "UPS-1500", "SW-24P"])
                    quantity = "6" if sku == "CAT6-5M" else "1"
                    charges.append({"ticket": ticket["ref"], "product": sku, "date": last_day.isoformat(),
                                    "quantity": quantity})
                if kind == ONSITE and rng.random() < 0.3:
                    charges.append({"ticket": ticket["ref"], "description": "Mileage (42 mi at $0.70)",
                                    "date": opened.isoformat(), "quantity": "42", "unit_price": "0.70",
                                    "is_expense": True})
                # Status: older tickets are done; the newest are still being worked on.
                age = (LAST_DAY - last_day).days
                if age > 20 or (age > 5 and rng.random() < 0.7):
                    ticket["status"] = "closed" if rng.random() < 0.6 else "resolved"
                    ticket["resolved_on"] = min(last_day + dt.timedelta(days=rng.randint(0, 2)), LAST_DAY).isoformat()
                else:
                    ticket["status"] = rng.choice(["open", "in_progress"])
                resolved = ticket.get("resolved_on", "9999")
                if ticket["status"] == "closed" and (
                    (customer in BILLED_IN_AUGUST and resolved <= "2026-08-31")
                    or (customer in BILLED_IN_SEPTEMBER and resolved <= "2026-09-30")
                ):
                    ticket["billed"] = "2026-09-01" if resolved <= "2026-08-31" else "2026-10-01"
                tickets.append(ticket)
    charges += [
        {"contract": "hvd-retainer", "product": "M365-BP", "description": "Microsoft 365 licences added mid-month",
         "date": "2026-10-15", "quantity": "3"},
        {"contract": "chm-retainer", "description": "Hotel Wi-Fi survey (fixed price)", "date": "2026-09-20",
         "unit_price": "650.00", "billed": "2026-10-01"},
        {"contract": "wag-retainer", "product": "FW-SMB", "date": "2026-10-08"},
    ]
    return tickets, entries, charges


def build() -> dict:
    rng = random.Random(SEED)
    tickets, entries, charges = _tickets_and_time(rng)
    return {
        "format": "msp-billing-import",
        "version": 1,
        "description": "Demo IT Services: generated by onboarding/demo_data/generate.py — do not edit by hand.",
        # What the customer reads on every invoice: who bills them, and how to pay.
        "settings": {
            "address": "Demo IT Services LLC\n250 Hudson Street, Suite 700\nNew York, NY 10013",
            "payment_instructions": "Pay by ACH or wire to Demo IT Services LLC, First Example Bank,\n"
                                    "routing 021000021, account 483920175 — or by card at pay.demo.example.",
            "terms": "Payment is due within the terms shown. Late balances may incur 1.5 % a month.",
        },
        "work_types": [
            {"name": REMOTE}, {"name": ONSITE},
            {"name": OOH, "is_after_hours": True, "after_hours_multiplier": "1.5"},
            {"name": INSTALL}, {"name": PROJECT},
            {"name": EMERGENCY, "is_after_hours": True, "after_hours_multiplier": "2"},
            {"name": MAINTENANCE},
            {"name": INTERNAL, "billable": False},
        ],
        "roles": [
            {"name": "Tier 1", "default_rate": "95.00", "cost_rate": "32.00"},
            {"name": "Engineer", "default_rate": "135.00", "cost_rate": "48.00"},
            {"name": "Architect", "default_rate": "185.00", "cost_rate": "72.00"},
        ],
        "rate_items": [
            {"name": "Remote Support Labour", "rate": "120.00", "accounting_code": "4100"},
            {"name": "Onsite Support Labour", "rate": "145.00", "accounting_code": "4110"},
            {"name": "Project Engineering", "rate": "165.00", "accounting_code": "4200"},
        ],
        "products": [
            {"sku": "M365-BP", "name": "Microsoft 365 Business Premium (monthly)", "price": "22.00", "cost": "18.50",
             "accounting_code": "4500"},
            {"sku": "M365-BS", "name": "Microsoft 365 Business Standard (monthly)", "price": "12.50", "cost": "10.00",
             "accounting_code": "4500"},
            {"sku": "SSD-1TB", "name": "Samsung 1 TB SSD", "price": "149.00", "cost": "95.00", "accounting_code": "4600"},
            {"sku": "DOCK-USBC", "name": "USB-C docking station", "price": "229.00", "cost": "160.00",
             "accounting_code": "4600"},
            {"sku": "CAT6-5M", "name": "Cat 6 patch cable 5 m", "price": "9.50", "cost": "3.20", "accounting_code": "4600"},
            {"sku": "UPS-1500", "name": "UPS 1500 VA", "price": "389.00", "cost": "270.00", "accounting_code": "4600"},
            {"sku": "SW-24P", "name": "24-port PoE switch", "price": "649.00", "cost": "455.00", "accounting_code": "4600"},
            {"sku": "FW-SMB", "name": "Small-business firewall appliance", "price": "899.00", "cost": "640.00",
             "accounting_code": "4600"},
        ],
        "tax_rates": [
            {"code": "NYS", "name": "NY sales tax", "percent": "8.125", "effective_from": "2026-01-01"},
            {"code": "NJS", "name": "NJ sales tax", "percent": "6.625", "effective_from": "2026-01-01"},
            {"code": "EXEMPT", "name": "Tax exempt", "percent": "0", "effective_from": "2026-01-01"},
        ],
        "exclusion_sets": [
            {"name": "Gold", "work_types": [ONSITE, OOH]},
            {"name": "Silver", "work_types": [OOH]},
            {"name": "Bronze", "work_types": [ONSITE, OOH, INSTALL, PROJECT, EMERGENCY]},
            # A project contract takes project time only; other work goes to the customer's other contracts.
            {"name": "Projects only", "work_types": [REMOTE, ONSITE, OOH, EMERGENCY, MAINTENANCE]},
        ],
        "technicians": [{"email": email, "full_name": name, "role": role} for email, name, role in TECHNICIANS],
        "customers": _customers(),
        "contracts": _contracts(),
        "tickets": tickets,
        "time_entries": entries,
        "charges": charges,
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    data = build()
    print(f"Wrote {OUTPUT}: {len(data['customers'])} customers, {len(data['contracts'])} contracts, "
          f"{len(data['tickets'])} tickets, {len(data['time_entries'])} time entries, {len(data['charges'])} charges.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
