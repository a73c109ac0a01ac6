"""The pure part: Meta's payloads, our records, settings of numbers and agents, schedule and
hours, the decision, routing and value types. Imports nothing outside itself (no I/O)."""
