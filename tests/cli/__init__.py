"""Tests of tcc_otel/_cli: test_init.py for the command line (__init__.py), then one per module."""
