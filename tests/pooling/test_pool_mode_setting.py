"""DATABASE_POOL_MODE: off by default (the entry unchanged); ``transaction`` switches the backend."""
import pytest

from msp_billing.pooled_backend import pooled_database
from msp_billing.settings.urls import database_from_url


def test_off_leaves_the_database_entry_as_it_is():
    db = database_from_url("postgres://billing@db.internal:5432/msp")
    for mode in ("", "off", "OFF"):
        assert pooled_database(db, mode) is db


def test_transaction_mode_pooled_backend_no_prepared_statements_no_server_side_cursors():
    db = database_from_url("postgres://billing@pool.internal:6432/msp?server_side_binding=true&sslmode=require")
    pooled = pooled_database(db, "transaction", "postgres://billing:s%40cret@db.internal:5432/msp")
    assert pooled["ENGINE"] == "msp_billing.pooled_backend"
    assert pooled["OPTIONS"] == {"sslmode": "require", "prepare_threshold": None}
    assert pooled["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert pooled["DIRECT"] == {"HOST": "db.internal", "PORT": "5432", "USER": "billing", "PASSWORD": "s@cret"}
    assert (pooled["HOST"], pooled["PORT"]) == ("pool.internal", "6432")
    assert "DIRECT" not in pooled_database(db, "transaction")


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="DATABASE_POOL_MODE"):
        pooled_database(database_from_url("postgres://u@h/d"), "session")
