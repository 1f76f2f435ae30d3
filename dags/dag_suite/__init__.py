"""The DAG suite's shared code: imported by the DAG files, never parsed as DAGs itself."""
