"""projections/media.py: the media read model replays from the log into the same rows."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from projections.replay import projection_by_name, replay
from projections.streams import media_stream
from schemas.events import EventMetadata, MediaConfirmed, MediaRejected, MediaUploadRequested
from service.identity.ids import new_id
from service.runtime import Runtime
from tests.conftest import Tenant


async def test_replay_rebuilds_pending_confirmed_and_rejected_uploads_identically(
    pool: asyncpg.Pool, runtime: Runtime, tenant: Tenant
) -> None:
    meta = EventMetadata(tenant_id=tenant.tenant_id, actor="alice")
    outcomes = [None, MediaConfirmed, MediaRejected]
    for outcome in outcomes:
        media_id = new_id("med")
        stream = media_stream(tenant.tenant_id, media_id)
        requested = MediaUploadRequested(media_id=media_id, uploaded_by="alice", filename="a.png",
                                         content_type="image/png", size=10, object_key=f"uploads/x/{media_id}",
                                         expires_at=datetime(2030, 1, 1, tzinfo=UTC))
        await runtime.appender.append(stream, [requested], tenant_id=tenant.tenant_id, metadata=meta,
                                      expected_seq=0, create_stream=True)
        if outcome is MediaConfirmed:
            await runtime.appender.append(stream, [MediaConfirmed(
                media_id=media_id, content_type="image/png", sha256="ab" * 32, size=10, width=2, height=5,
                thumbnail_key="t")], tenant_id=tenant.tenant_id, metadata=meta, expected_seq=1)
        elif outcome is MediaRejected:
            await runtime.appender.append(stream, [MediaRejected(media_id=media_id, code="MEDIA_TYPE_MISMATCH",
                                                                 reason="not a png")],
                                          tenant_id=tenant.tenant_id, metadata=meta, expected_seq=1)
    statuses = await pool.fetch("SELECT status, width FROM media WHERE tenant_id = $1 ORDER BY status",
                                tenant.tenant_id)
    assert [tuple(r) for r in statuses] == [("confirmed", 2), ("pending", None), ("rejected", None)]
    report = await replay(pool, [projection_by_name("media")], verify=True)
    assert report.differences == {"media": 0}
    assert report.swapped
