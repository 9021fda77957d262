"""What tcc_otel writes: attribute keys, value rules, limits, redaction and cost.
Pure functions, no state."""
