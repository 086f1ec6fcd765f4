# The shop's one image: web (gunicorn), Celery worker and beat, and the migrate step all run it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.production

WORKDIR /app
COPY . .
# The same pins as `make install` (requirements.lock); static files are collected into the image and
# served by whitenoise. The build-time values exist only for collectstatic and are not kept.
RUN pip install --constraint requirements.lock . \
    && SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost XERO_EMULATOR_URL=http://127.0.0.1:8765 \
       python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home-dir /app shop \
    && mkdir -p /app/var && chown -R shop /app/var

USER shop
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60"]
