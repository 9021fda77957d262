"""Tests of tcc_otel/_records: one module per module, test_<module>.py for _<module>.py."""
