"""The plugin's pages in the api-server: runbooks rendered from Markdown, behind Airflow's login."""
