# The exporter's own small image: Python and the package's `exporter` extra, no Airflow (the exporter reads
# the metadata DB directly). Built from the repository root: `docker compose build airflow-exporter`.
FROM python:3.11-slim-bookworm

WORKDIR /opt/airflow-obs
COPY pyproject.toml README.md ./
COPY airflow_obs ./airflow_obs
COPY plugins/observability ./plugins/observability
COPY exporters ./exporters
COPY alert_rules ./alert_rules
COPY dashboards ./dashboards
COPY runbooks ./runbooks
RUN pip install --no-cache-dir "/opt/airflow-obs[exporter]" && rm -rf /opt/airflow-obs

WORKDIR /
USER nobody
EXPOSE 9112
ENTRYPOINT ["airflow-obs", "exporter"]
CMD ["--host", "0.0.0.0", "--port", "9112"]
