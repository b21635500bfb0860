"""The PostgreSQL event log: migrations, group-committed appends and safe reads."""

from eventstore.append import Appender, AppendRequest, AppendResult, InlineHook, NoInlineHook
from eventstore.migrate import migrate
from eventstore.read import GlobalReader, read_stream
from eventstore.replicas import ReadPools, open_replicas

__all__ = [
    "AppendRequest",
    "AppendResult",
    "Appender",
    "GlobalReader",
    "InlineHook",
    "NoInlineHook",
    "ReadPools",
    "migrate",
    "open_replicas",
    "read_stream",
]
