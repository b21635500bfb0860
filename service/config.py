"""Settings from the environment, overridable by CLI flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import msgspec

from schemas.config import Settings

# environment variable -> Settings field
ENVIRONMENT = {
    "DATABASE_URL": "database_url",
    "DATABASE_REPLICA_URLS": "database_replica_urls",
    "NATS_URL": "nats_url",
    "ROOMLOG_HOST": "host",
    "ROOMLOG_PORT": "port",
    "ROOMLOG_DATA_DIR": "data_dir",
    "ROOMLOG_WORKERS": "workers",
    "ROOMLOG_LOG_JSON": "log_json",
    "ROOMLOG_LOG_LEVEL": "log_level",
    "ROOMLOG_ACCESS_LOG": "access_log",
    "ROOMLOG_MAX_BODY_BYTES": "max_body_bytes",
    "ROOMLOG_MAX_HEADER_BYTES": "max_header_bytes",
    "ROOMLOG_REQUEST_READ_SECONDS": "request_read_seconds",
    "ROOMLOG_DB_POOL_SIZE": "db_pool_size",
    "ROOMLOG_APPEND_WRITERS": "append_writers",
    "ROOMLOG_APPEND_MAX_BATCH": "append_max_batch",
    "ROOMLOG_JWT_KEYS": "jwt_keys",
    "ROOMLOG_JWT_ISSUER": "jwt_issuer",
    "ROOMLOG_ACCESS_TOKEN_SECONDS": "access_token_seconds",
    "ROOMLOG_REFRESH_TOKEN_SECONDS": "refresh_token_seconds",
    "ROOMLOG_PLATFORM_ADMIN_KEY": "platform_admin_key",
    "ROOMLOG_DEFAULT_RATE_LIMIT": "default_rate_limit",
    "ROOMLOG_DEFAULT_SEND_RATE_LIMIT": "default_send_rate_limit",
    "ROOMLOG_NATS_REPLICAS": "nats_replicas",
    "ROOMLOG_EVENTS_MAX_AGE_SECONDS": "events_max_age_seconds",
    "ROOMLOG_WEBHOOK_MAX_DELIVER": "webhook_max_deliver",
    "ROOMLOG_WEBHOOK_BACKOFF": "webhook_backoff",
    "ROOMLOG_WEBHOOK_TIMEOUT_SECONDS": "webhook_timeout_seconds",
    "ROOMLOG_WEBHOOK_ALLOW_PRIVATE": "webhook_allow_private",
    "ROOMLOG_BOT_CONTEXT_MESSAGES": "bot_context_messages",
    "ROOMLOG_BOT_TOKEN_SECONDS": "bot_token_seconds",
    "ROOMLOG_WS_TOKEN_SECONDS": "ws_token_seconds",
    "ROOMLOG_WS_QUEUE_SIZE": "ws_queue_size",
    "ROOMLOG_WS_CATCH_UP_PAGE": "ws_catch_up_page",
    "ROOMLOG_WS_SEND_TIMEOUT_SECONDS": "ws_send_timeout_seconds",
    "ROOMLOG_WS_RECHECK_SECONDS": "ws_recheck_seconds",
    "ROOMLOG_PRESENCE_FLUSH_SECONDS": "presence_flush_seconds",
    "ROOMLOG_PRESENCE_MEMORY_SECONDS": "presence_memory_seconds",
    "ROOMLOG_LOGIN_MAX_FAILURES": "login_max_failures",
    "ROOMLOG_LOGIN_ACCOUNT_MAX_FAILURES": "login_account_max_failures",
    "ROOMLOG_LOGIN_ADDRESS_MAX_FAILURES": "login_address_max_failures",
    "ROOMLOG_LOGIN_WINDOW_SECONDS": "login_window_seconds",
    "ROOMLOG_METRICS": "metrics",
    "ROOMLOG_METRICS_PORT": "metrics_port",
    "ROOMLOG_METRICS_SAMPLE_SECONDS": "metrics_sample_seconds",
    "ROOMLOG_GC_FULL_AFTER": "gc_full_after",
    "ROOMLOG_SUPPORT_POLICY": "support_policy",
    "ROOMLOG_SUPPORT_REFUSE_WITHOUT_AGENTS": "support_refuse_without_agents",
    "ROOMLOG_SUPPORT_REQUIRE_CONNECTION": "support_require_connection",
    "ROOMLOG_SUPPORT_OFFLINE_AFTER_SECONDS": "support_offline_after_seconds",
    "ROOMLOG_SUPPORT_DEFAULT_HANDLE_SECONDS": "support_default_handle_seconds",
    "ROOMLOG_SUPPORT_AUTO_CLOSE_SECONDS": "support_auto_close_seconds",
    "ROOMLOG_SUPPORT_FCR_REOPEN_DAYS": "support_fcr_reopen_days",
    "ROOMLOG_S3_URL": "s3_url",
    "ROOMLOG_S3_BUCKET": "s3_bucket",
    "ROOMLOG_S3_ACCESS_KEY": "s3_access_key",
    "ROOMLOG_S3_SECRET_KEY": "s3_secret_key",
    "ROOMLOG_S3_REGION": "s3_region",
    "ROOMLOG_MEDIA_UPLOAD_URL_SECONDS": "media_upload_url_seconds",
    "ROOMLOG_RETENTION_INTERVAL_SECONDS": "retention_interval_seconds",
    "ROOMLOG_MEDIA_DOWNLOAD_URL_SECONDS": "media_download_url_seconds",
    "ROOMLOG_MEDIA_MAX_BYTES": "media_max_bytes",
    "ROOMLOG_MEDIA_ALLOWED_TYPES": "media_allowed_types",
    "ROOMLOG_MEDIA_QUOTA_BYTES": "media_quota_bytes",
    "ROOMLOG_MEDIA_MAX_IMAGE_PIXELS": "media_max_image_pixels",
    "ROOMLOG_TYPING_SECONDS": "typing_seconds",
    "ROOMLOG_SYNC_MAX_ROOMS": "sync_max_rooms",
    "ROOMLOG_POLL_MAX_WAITING": "poll_max_waiting",
    "ROOMLOG_POLL_MAX_PER_USER": "poll_max_per_user",
    "ROOMLOG_POLL_MAX_TIMEOUT_SECONDS": "poll_max_timeout_seconds",
}
_SWITCH = {"on": "true", "off": "false"}


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from `env` (default: os.environ), then non-None `overrides` on top; bad values raise."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {field: env[name] for name, field in ENVIRONMENT.items() if env.get(name)}
    if isinstance(raw.get("webhook_backoff"), str):  # "1,5,30" in the environment
        raw["webhook_backoff"] = [float(x) for x in raw["webhook_backoff"].split(",") if x.strip()]
    if isinstance(raw.get("metrics"), str):  # ROOMLOG_METRICS=on|off reads like the other switches
        raw["metrics"] = _SWITCH.get(raw["metrics"].lower(), raw["metrics"])
    if isinstance(raw.get("media_allowed_types"), str):  # "image/png,application/pdf" in the environment
        raw["media_allowed_types"] = [t.strip() for t in raw["media_allowed_types"].split(",") if t.strip()]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    # strict=False lets "8080" and "true" from the environment become int and bool.
    return msgspec.convert(raw, Settings, strict=False)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce `settings` (for worker processes)."""
    values = msgspec.structs.asdict(settings)
    return {name: _env_str(values[field]) for name, field in ENVIRONMENT.items() if values[field] is not None}


def _env_str(value: object) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)
