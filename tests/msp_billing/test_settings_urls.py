from msp_billing.settings.urls import celery_url_from_redis, database_from_url, with_redis_db


def test_tcp_database_url():
    db = database_from_url("postgres://billing:s%40cret@db.internal:6432/msp")
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == ("db.internal", "6432", "msp", "billing", "s@cret")
    assert db["ENGINE"] == "django_tenants.postgresql_backend"


def test_socket_database_urls_in_both_spellings():
    encoded = database_from_url("postgres://postgres@%2Fsrv%2Fmsp%2Fvar%2Fpgdata/postgres")
    query = database_from_url("postgresql://postgres:@/postgres?host=/srv/msp/var/pgdata")
    for db in (encoded, query):
        assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == ("/srv/msp/var/pgdata", "", "postgres", "postgres")


def test_redis_urls_for_django_and_celery():
    assert with_redis_db("redis://cache:6379/0", 13) == "redis://cache:6379/13"
    assert with_redis_db("unix:///tmp/r.sock", 2) == "unix:///tmp/r.sock?db=2"
    assert celery_url_from_redis("unix:///tmp/r.sock?db=2") == "redis+socket:///tmp/r.sock?virtual_host=2"
    assert celery_url_from_redis("redis://cache:6379/1") == "redis://cache:6379/1"
