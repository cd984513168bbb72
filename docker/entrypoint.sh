#!/bin/sh
# Migrations run once, from the web container; workers and beat just start.
set -e
if [ "$1" = "gunicorn" ]; then
  python manage.py migrate_schemas --shared
  python manage.py ensure_platform
  python manage.py migrate_schemas --tenant
fi
exec "$@"
