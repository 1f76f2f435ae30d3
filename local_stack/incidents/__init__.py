"""Fault injection on a running local stack: break something on purpose, then watch the alert arrive and resolve.

`make incident SCENARIO=...` (python -m local_stack incident) runs one scenario on a `make up` stack and prints
each notification as it reaches the captures; tests/integration/test_incidents.py runs them with compressed time.
"""
