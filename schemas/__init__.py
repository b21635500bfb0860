"""Every msgspec type roomlog speaks: events, API bodies, errors and configuration."""
