"""Tests of tcc_otel/_schema: one module per module, test_<module>.py for _<module>.py."""
