"""roomlog's Python SDK: the REST API with safe retries, and live subscriptions with exact resume."""

from roomlog_client import _api as types
from roomlog_client.client import RoomlogClient
from roomlog_client.errors import (
    ApiError,
    AuthenticationFailed,
    BadRequest,
    Conflict,
    ConnectionLost,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RoomlogError,
    ServiceUnavailable,
)
from roomlog_client.live import JsonFileSeqStore, SeqStore, Subscription

__all__ = [
    "ApiError", "AuthenticationFailed", "BadRequest", "Conflict", "ConnectionLost", "JsonFileSeqStore",
    "NotFound", "PayloadTooLarge", "PermissionDenied", "RateLimited", "RoomlogClient", "RoomlogError",
    "SeqStore", "ServiceUnavailable", "Subscription", "types",
]
