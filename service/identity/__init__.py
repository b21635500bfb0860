"""Who is calling and what they hold: accounts, sessions and tokens, tenants, API keys, users."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "accounts",
    "api_keys",
    "auth",
    "ids",
    "passwords",
    "tenants",
    "tokens",
    "users",
]
