"""From ended spans to the wire: processor, batcher, sender, spool, transports, encoder,
counters, process hooks."""
