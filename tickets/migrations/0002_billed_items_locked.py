"""Billed tickets, time entries, allocations and charges are locked in the database itself.

The services refuse such edits with a clear message first; these triggers make sure no
other path (a bulk update, a shell, a bug) can change or delete what was billed. While an
item is billed only ``billed_at`` may change (a deleted batch releases it); a billed
ticket also takes no new time entries or charges, and may only move on to closed.
"""
from django.db import migrations

# One statement per string: Citus sends each to the workers as a prepared statement.
# ``SET search_path FROM CURRENT`` keeps the MSP's schema for the tables the functions name,
# whoever's search_path fires the trigger (on a Citus worker: the worker's own).
SQL = [
    r"""
CREATE OR REPLACE FUNCTION billing_lock_row() RETURNS trigger AS $$
DECLARE
    probe record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.billed_at IS NOT NULL THEN
            RAISE EXCEPTION 'billed % % is locked: it cannot be deleted', TG_TABLE_NAME, OLD.id
                USING ERRCODE = 'check_violation', HINT = 'Open a new ticket for further work.';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.billed_at IS NOT NULL THEN
        probe := NEW;
        probe.billed_at := OLD.billed_at;
        IF TG_TABLE_NAME = 'tickets_ticket' THEN
            -- A billed ticket may still be closed; nothing else.
            IF NEW.status = 'closed' THEN
                probe.status := OLD.status;
                probe.resolved_at := OLD.resolved_at;
            END IF;
        END IF;
        IF probe IS DISTINCT FROM OLD THEN
            RAISE EXCEPTION 'billed % % is locked: it cannot be changed', TG_TABLE_NAME, OLD.id
                USING ERRCODE = 'check_violation', HINT = 'Open a new ticket for further work.';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT
""",
    r"""
CREATE OR REPLACE FUNCTION billing_lock_ticket_children() RETURNS trigger AS $$
DECLARE
    ticket_ref bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        ticket_ref := OLD.ticket_id;
    ELSE
        ticket_ref := NEW.ticket_id;
    END IF;
    IF ticket_ref IS NOT NULL AND EXISTS (
        SELECT 1 FROM tickets_ticket WHERE id = ticket_ref AND billed_at IS NOT NULL
    ) AND (TG_OP = 'INSERT' OR NEW.ticket_id IS DISTINCT FROM OLD.ticket_id) THEN
        RAISE EXCEPTION 'ticket % is billed and locked: it takes no more time or charges', ticket_ref
            USING ERRCODE = 'check_violation', HINT = 'Open a new ticket for further work.';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.ticket_id IS DISTINCT FROM NEW.ticket_id AND EXISTS (
        SELECT 1 FROM tickets_ticket WHERE id = OLD.ticket_id AND billed_at IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'ticket % is billed and locked: its items cannot be moved', OLD.ticket_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT
""",
    r"""
CREATE OR REPLACE FUNCTION billing_lock_allocation() RETURNS trigger AS $$
DECLARE
    entry_ref bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        entry_ref := NEW.entry_id;
    ELSE
        entry_ref := OLD.entry_id;
    END IF;
    IF EXISTS (SELECT 1 FROM tickets_timeentry WHERE id = entry_ref AND billed_at IS NOT NULL) THEN
        RAISE EXCEPTION 'time entry % is billed and locked: its allocations cannot change', entry_ref
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT
""",
    """CREATE TRIGGER ticket_locked BEFORE UPDATE OR DELETE ON tickets_ticket
        FOR EACH ROW EXECUTE FUNCTION billing_lock_row()""",
    """CREATE TRIGGER time_entry_locked BEFORE UPDATE OR DELETE ON tickets_timeentry
        FOR EACH ROW EXECUTE FUNCTION billing_lock_row()""",
    """CREATE TRIGGER charge_locked BEFORE UPDATE OR DELETE ON tickets_charge
        FOR EACH ROW EXECUTE FUNCTION billing_lock_row()""",
    """CREATE TRIGGER time_entry_on_locked_ticket BEFORE INSERT OR UPDATE ON tickets_timeentry
        FOR EACH ROW EXECUTE FUNCTION billing_lock_ticket_children()""",
    """CREATE TRIGGER charge_on_locked_ticket BEFORE INSERT OR UPDATE ON tickets_charge
        FOR EACH ROW EXECUTE FUNCTION billing_lock_ticket_children()""",
    """CREATE TRIGGER allocation_locked BEFORE INSERT OR UPDATE OR DELETE ON tickets_timeallocation
        FOR EACH ROW EXECUTE FUNCTION billing_lock_allocation()""",
]

REVERSE = [
    "DROP TRIGGER IF EXISTS ticket_locked ON tickets_ticket",
    "DROP TRIGGER IF EXISTS time_entry_locked ON tickets_timeentry",
    "DROP TRIGGER IF EXISTS charge_locked ON tickets_charge",
    "DROP TRIGGER IF EXISTS time_entry_on_locked_ticket ON tickets_timeentry",
    "DROP TRIGGER IF EXISTS charge_on_locked_ticket ON tickets_charge",
    "DROP TRIGGER IF EXISTS allocation_locked ON tickets_timeallocation",
    "DROP FUNCTION IF EXISTS billing_lock_row()",
    "DROP FUNCTION IF EXISTS billing_lock_ticket_children()",
    "DROP FUNCTION IF EXISTS billing_lock_allocation()",
]


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
