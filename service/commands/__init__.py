"""Commands shared by REST, WebSocket and consumers: load what a rule needs, decide, append."""
