"""Connection ids the suite uses: one place, so DAGs, the local stack and the docs agree.

The local stack (`make up`) defines each as an AIRFLOW_CONN_<ID> environment variable pointing at its
loopback services; in other deployments define them in a secrets backend or under Admin > Connections.
"""

WAREHOUSE = "warehouse"  # sqlite:////path/warehouse.db or postgresql://user:pw@host:5432/warehouse
SOURCE_API = "source_api"  # http://host:port of the orders source service (dag_suite.source_api)
AIRFLOW_API = "airflow_api"  # http://user:pw@host:port of Airflow's REST API; a read-only (viewer) account
PROMETHEUS = "prometheus"  # http://host:port
ALERTMANAGER = "alertmanager"  # http://host:port
EXPORTER = "airflow_exporter"  # http://host:port of the toolkit's exporter
# The metadata DB itself, for the maintenance DAGs only (cleanup, backup): task processes run with Airflow's
# own DB access blocked, so these DAGs get the URL through this connection.
METADATA_DB = "airflow_metadata_db"
