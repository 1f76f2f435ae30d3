"""Fault injection on a running local stack: break something on purpose, then watch the alert arrive and resolve.

`airflow-obs incident SCENARIO` (`make incident SCENARIO=...`) runs one scenario on a `make up` stack and prints
each notification as it reaches the captures; tests/integration/test_incidents.py runs them with compressed time.
"""
