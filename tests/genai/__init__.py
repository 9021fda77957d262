"""Fixtures recorded from third-party GenAI instrumentations (see families.py and capture.py)."""
