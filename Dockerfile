# One image for every modwatch process; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The exact versions of requirements.lock, as `make run` and CI install them.
COPY pyproject.toml README.md requirements.lock ./
COPY service ./service
RUN pip install --constraint requirements.lock . \
 && useradd --system --uid 10001 --home-dir /app modwatch \
 && mkdir -p /app/var \
 && chown modwatch /app/var

USER modwatch
EXPOSE 8080 9100 9181 3000
CMD ["modwatch", "api", "--host", "0.0.0.0", "--port", "8080"]
