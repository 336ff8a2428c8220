"""Real peers the tests run against that are not Python packages (Alertmanager, PostgreSQL).
``python -m tests.peers install`` fetches what is missing, when it may."""
