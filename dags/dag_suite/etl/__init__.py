"""The daily orders ETL's business logic (the DAG file is dags/etl_orders.py), one idea per module:

generator  deterministic source data per date (customers, orders with ~3% bad rows, exchange rates)
landing    where the day's files live: landing/<ds>/ (as delivered) and staging/<ds>/ (clean)
extract    landing files from the upstream systems, exchange rates over HTTP from the source service
transform  validation and cleaning; bad rows go to quarantine with a reason
quality    data-quality checks that gate the load (DataQualityError)
load       warehouse tables, idempotent upserts, the quarantine table
"""
