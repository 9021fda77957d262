"""Helpers shared by the wire and failure tests."""
