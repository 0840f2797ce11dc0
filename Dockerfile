# One image for the three processes of a deployment: gRPC code server, webserver, daemon.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/home
WORKDIR /opt/trading_data

COPY pyproject.toml README.md ./
COPY trading_data ./trading_data
RUN pip install --no-cache-dir . \
    && mkdir -p "$DAGSTER_HOME"
# Instance storage: TRADING_DATA_DAGSTER_DATABASE_URL from the environment (see docker-compose.yml),
# resolved by trading_data.db.dagster_storage, which dagster.yaml names.
COPY dagster.yaml "$DAGSTER_HOME/dagster.yaml"
COPY deploy/docker/workspace.yaml /opt/dagster/workspace.yaml

EXPOSE 3000 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "trading_data.definitions"]
