"""Deployment suites: real servers, worker pools, forks and signals (see conftest.py)."""
