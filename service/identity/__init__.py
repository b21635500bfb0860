"""Who is calling and what they hold: accounts, sessions and tokens, tenants, API keys, users."""
