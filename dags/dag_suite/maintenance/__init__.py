"""Shared code of the maintenance DAGs (metadata DB cleanup and backup, task-log cleanup, audit): one idea per module.

Tasks never use Airflow's ORM (Airflow 3 blocks it in task processes): the DB work happens in an `airflow` CLI
subprocess or over plain DB-API connections; see `metadata_db` for how a task finds the metadata DB.
"""
