"""Runtime configuration, read from flags and ROOMLOG_* / DATABASE_URL / NATS_URL environment variables."""

from __future__ import annotations

from typing import Annotated

import msgspec


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    database_url: str | None = None
    # Hot standbys of database_url, comma-separated: reads of history go to one that has caught up.
    database_replica_urls: str | None = None
    nats_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = ".roomlog"
    workers: int = 1
    log_json: bool = False
    log_level: str = "info"
    access_log: bool = True
    max_body_bytes: int = 64 * 1024
    # A request's head (request line and headers) may be this large; the head, and then the body, must
    # each arrive within request_read_seconds.
    max_header_bytes: int = 32 * 1024
    request_read_seconds: float = 30.0
    db_pool_size: int = 10
    # Group commit: concurrent appends share one transaction; this many batches may be in flight at once.
    # One writer makes the biggest batches (measured: 16 appends per transaction against 6 with four).
    append_writers: int = 1
    append_max_batch: int = 500
    # JWT signing keys "kid=secret,kid2=secret2": the first signs, all verify (keep a retired key listed
    # for at least access_token_seconds so tokens signed with it stay valid). Unset: a key kept in the database.
    jwt_keys: str | None = None
    jwt_issuer: str = "roomlog"
    access_token_seconds: int = 900
    refresh_token_seconds: int = 30 * 24 * 3600
    # A credential for operations across tenants (X-API-Key with X-Tenant-Id); unset: no platform admin.
    platform_admin_key: str | None = None
    # Requests per second per tenant and messages per second per user; 0 = unlimited. Tenants may override.
    default_rate_limit: int = 100
    default_send_rate_limit: int = 20
    # JetStream: replicas per stream (3 in a NATS cluster), how long the event stream keeps messages.
    nats_replicas: int = 1
    events_max_age_seconds: int = 7 * 24 * 3600
    # Webhook deliveries: attempts in all, and the waits between them (seconds).
    webhook_max_deliver: int = 6
    webhook_backoff: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)
    webhook_timeout_seconds: float = 10.0
    # Let webhooks reach loopback, private, link-local and other non-public addresses (local development).
    webhook_allow_private: bool = False
    # Bots: messages of the room before the triggering one carried in a bot.triggered delivery, and the
    # lifetime of the reply token each delivery attempt carries.
    bot_context_messages: int = 10
    bot_token_seconds: int = 300
    # WebSocket: lifetime of a messaging token, how many events may wait for one slow client, how long
    # one write to a client may take before it is given up, and how often a socket's session is re-checked.
    ws_token_seconds: int = 120
    ws_queue_size: int = 2000
    # Events read from a room's log per query when a WebSocket client catches up.
    ws_catch_up_page: Annotated[int, msgspec.Meta(ge=1)] = 1000
    ws_send_timeout_seconds: float = 10.0
    ws_recheck_seconds: float = 60.0
    # Presence: how often an instance writes its users' activity and WebSocket leases to the presence bucket
    # (a lease lasts three flushes), and how long the bucket keeps a user's last activity (their last_seen).
    presence_flush_seconds: float = 10.0
    presence_memory_seconds: float = 86_400.0
    # Failed logins allowed within login_window_seconds (0 = no limit): per (client address, account),
    # per account from anywhere, and per client address over all accounts (see service.identity.accounts.LoginThrottle).
    login_max_failures: int = 5
    login_account_max_failures: int = 20
    login_address_max_failures: int = 100
    login_window_seconds: int = 900
    # Prometheus metrics: recorded and served on GET /metrics unless off; on a port of their own (and then
    # not on the API's port) when metrics_port is set; lags and queue depths sampled this often.
    metrics: bool = True
    metrics_port: int | None = None
    metrics_sample_seconds: float = 5.0
    # Young collections between two full ones (the collector's third threshold; Python's default is 10). A full
    # collection walks every object a waiting long-poll holds, and nothing runs meanwhile (bench/poll.py).
    gc_full_after: Annotated[int, msgspec.Meta(ge=1)] = 100
    # Support desk: the routing policy (service.domain.support.routing.POLICIES), whether POST
    # /support/sessions refuses (400 NO_AGENTS_AVAILABLE) instead of queueing while no eligible agent is
    # available, whether routing requires an agent's live WebSocket connection (an agent gone for longer than
    # support_offline_after_seconds counts as offline: a brief reconnect keeps its place), and the handle time
    # assumed for wait estimates until sessions have ended.
    support_policy: str = "spare_capacity"
    support_refuse_without_agents: bool = False
    support_require_connection: bool = False
    support_offline_after_seconds: float = 30.0
    support_default_handle_seconds: float = 300.0
    support_auto_close_seconds: float = 60.0  # how often solved tickets due to close are looked for
    # Analytics: a ticket reopened within this many days of its first resolution was not resolved at first contact.
    support_fcr_reopen_days: int = 7
    # Object store for media (any S3 endpoint); unset: `serve` starts the embedded SeaweedFS.
    s3_url: str | None = None
    s3_bucket: str = "roomlog-media"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    # Presigned URLs: how long an upload URL and a download (cdn_url, thumbnail_url) URL stay valid.
    media_upload_url_seconds: int = 900
    # How often each instance runs the retention job (redacting messages past their room's retention).
    retention_interval_seconds: float = 300.0
    media_download_url_seconds: int = 300
    # Per-tenant limits: largest file, allowed content types (comma-separated in the environment),
    # bytes stored per tenant (0 = no quota).
    media_max_bytes: int = 25 * 1024 * 1024
    media_allowed_types: tuple[str, ...] = (
        "image/png", "image/jpeg", "image/gif", "image/webp",
        "audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4", "audio/webm",
        "video/mp4", "video/webm", "video/quicktime",
        "application/pdf", "text/plain", "text/csv",
        "application/zip",
        "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    )
    media_quota_bytes: int = 10 * 1024**3
    # Images with more pixels are refused undecoded (decompression bombs); thumbnails fit in this square.
    media_max_image_pixels: int = 40_000_000
    # Typing: a user counts as typing for this long after their last typing signal (REST or WebSocket).
    typing_seconds: float = 5.0
    # REST sync and long-poll: rooms one POST /sync or GET /poll may name; polls waiting at once per
    # process (over it: 503 POLLS_FULL) and per user per process (429 TOO_MANY_POLLS); the longest wait.
    sync_max_rooms: int = 100
    poll_max_waiting: int = 5000
    poll_max_per_user: int = 4
    poll_max_timeout_seconds: int = 60
    media_thumbnail_pixels: int = 320
