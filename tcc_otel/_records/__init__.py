"""Run, Step, ToolCall and the span of the default mode: plain fields, ended once."""
