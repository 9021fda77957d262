"""Tests of tcc_otel/_export: one module per module, test_<module>.py for _<module>.py."""
