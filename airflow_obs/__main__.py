from airflow_obs.cli import main

main()
