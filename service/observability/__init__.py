"""Logging (and, later, metrics)."""
