"""Loopback OTLP/HTTP receiver and span-tree printer behind ``tcc-otel dev``."""
