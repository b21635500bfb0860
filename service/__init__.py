"""The roomlog service: HTTP API, command handlers, CLI and the embedded runtime."""
