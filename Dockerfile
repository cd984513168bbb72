FROM python:3.11-slim-bookworm

# WeasyPrint needs Pango; fonts for readable PDFs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY . .
RUN pip install --no-cache-dir . \
 && DJANGO_SETTINGS_MODULE=msp_billing.settings.production DJANGO_SECRET_KEY=build-only \
    DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput

RUN useradd --create-home billing && mkdir -p /app/var && chown -R billing /app/var
USER billing
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
