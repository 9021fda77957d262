"""End-to-end suites through the public API: interop, faults, exit, fork, collector, mixed
languages, drop-in compatibility, limits and what the receiver gets."""
