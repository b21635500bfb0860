"""Rate limits shared by every instance through leases on PostgreSQL rows."""

# The public modules (imported where used, never eagerly here); `_private` modules are internals.
__all__ = [
    "limiter",
]
