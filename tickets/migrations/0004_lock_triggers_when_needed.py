"""The lock triggers fire only on rows they can refuse.

A month-end run marks a million time entries billed in one statement; the row triggers of
0002 ran their function for every one of them although only rows already billed (or a
move to another ticket) can be refused. The same checks now carry a ``WHEN`` condition,
so PostgreSQL skips the function call for every other row. What is refused is unchanged.
"""
from django.db import migrations

# One statement per string: Citus sends each to the workers as a prepared statement.
SQL = [
    """DROP TRIGGER IF EXISTS ticket_locked ON tickets_ticket""",
    """DROP TRIGGER IF EXISTS time_entry_locked ON tickets_timeentry""",
    """DROP TRIGGER IF EXISTS charge_locked ON tickets_charge""",
    """DROP TRIGGER IF EXISTS time_entry_on_locked_ticket ON tickets_timeentry""",
    """DROP TRIGGER IF EXISTS charge_on_locked_ticket ON tickets_charge""",
    """CREATE TRIGGER ticket_locked BEFORE UPDATE OR DELETE ON tickets_ticket
    FOR EACH ROW WHEN (OLD.billed_at IS NOT NULL) EXECUTE FUNCTION billing_lock_row()""",
    """CREATE TRIGGER time_entry_locked BEFORE UPDATE OR DELETE ON tickets_timeentry
    FOR EACH ROW WHEN (OLD.billed_at IS NOT NULL) EXECUTE FUNCTION billing_lock_row()""",
    """CREATE TRIGGER charge_locked BEFORE UPDATE OR DELETE ON tickets_charge
    FOR EACH ROW WHEN (OLD.billed_at IS NOT NULL) EXECUTE FUNCTION billing_lock_row()""",
    """CREATE TRIGGER time_entry_on_locked_ticket BEFORE INSERT ON tickets_timeentry
    FOR EACH ROW EXECUTE FUNCTION billing_lock_ticket_children()""",
    """CREATE TRIGGER time_entry_moved_from_locked_ticket BEFORE UPDATE ON tickets_timeentry
    FOR EACH ROW WHEN (NEW.ticket_id IS DISTINCT FROM OLD.ticket_id) EXECUTE FUNCTION billing_lock_ticket_children()""",
    """CREATE TRIGGER charge_on_locked_ticket BEFORE INSERT ON tickets_charge
    FOR EACH ROW EXECUTE FUNCTION billing_lock_ticket_children()""",
    """CREATE TRIGGER charge_moved_from_locked_ticket BEFORE UPDATE ON tickets_charge
    FOR EACH ROW WHEN (NEW.ticket_id IS DISTINCT FROM OLD.ticket_id) EXECUTE FUNCTION billing_lock_ticket_children()""",
]

REVERSE = [
    """DROP TRIGGER IF EXISTS ticket_locked ON tickets_ticket""",
    """DROP TRIGGER IF EXISTS time_entry_locked ON tickets_timeentry""",
    """DROP TRIGGER IF EXISTS charge_locked ON tickets_charge""",
    """DROP TRIGGER IF EXISTS time_entry_on_locked_ticket ON tickets_timeentry""",
    """DROP TRIGGER IF EXISTS time_entry_moved_from_locked_ticket ON tickets_timeentry""",
    """DROP TRIGGER IF EXISTS charge_on_locked_ticket ON tickets_charge""",
    """DROP TRIGGER IF EXISTS charge_moved_from_locked_ticket ON tickets_charge""",
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
]


class Migration(migrations.Migration):
    dependencies = [("tickets", "0003_approval_posted_values")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
