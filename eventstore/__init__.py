"""The PostgreSQL event log: migrations, group-committed appends and safe reads."""

from eventstore.append import Appender, AppendRequest, AppendResult, InlineHook, NoInlineHook
from eventstore.migrate import migrate
from eventstore.read import GlobalReader, read_stream

__all__ = [
    "AppendRequest",
    "AppendResult",
    "Appender",
    "GlobalReader",
    "InlineHook",
    "NoInlineHook",
    "migrate",
    "read_stream",
]
