-- rl_guard_failures as in 030, refusing every write to a deleted room: a 'member' or 'message' guard on a room
-- with rooms.deleted_seq set fails with ROOM_DELETED (after the membership check, so outsiders learn no more
-- than before). Checked under the room's lock, so no write lands after the room.deleted event.

CREATE OR REPLACE FUNCTION rl_guard_failures(kinds text[], tenants text[], arg1 text[], arg2 text[], arg3 text[])
RETURNS TABLE (req int, code text, detail text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT q.k::int,
           CASE WHEN r.room_id IS NULL THEN 'ROOM_NOT_FOUND'
                WHEN m.role IS NULL THEN 'NOT_A_MEMBER'
                WHEN r.deleted_seq IS NOT NULL THEN 'ROOM_DELETED'
                WHEN q.a3 = 'admin' AND m.role <> 'admin' THEN 'NOT_ROOM_ADMIN'
                WHEN q.a3 = 'poster' AND r.who_can_post = 'admins' AND m.role <> 'admin' THEN 'POSTING_RESTRICTED' END,
           NULL::text
    FROM unnest(kinds, tenants, arg1, arg2, arg3) WITH ORDINALITY AS q(kind, tenant, a1, a2, a3, k)
    LEFT JOIN LATERAL (SELECT rr.room_id, rr.who_can_post, rr.deleted_seq FROM rooms rr
                       WHERE rr.room_id = q.a1 AND rr.tenant_id = q.tenant) r ON true
    LEFT JOIN LATERAL (SELECT mm.role FROM members mm
                       WHERE mm.room_id = q.a1 AND mm.user_id = q.a2 AND mm.active) m ON true
    WHERE q.kind = 'member'
      AND (r.room_id IS NULL OR m.role IS NULL OR r.deleted_seq IS NOT NULL OR (q.a3 = 'admin' AND m.role <> 'admin')
           OR (q.a3 = 'poster' AND r.who_can_post = 'admins' AND m.role <> 'admin'))
    UNION ALL
    SELECT q.k::int, 'ROOM_EXISTS', r.room_id
    FROM unnest(kinds, tenants, arg1) WITH ORDINALITY AS q(kind, tenant, a1, k)
    CROSS JOIN LATERAL (SELECT rr.room_id FROM rooms rr
                        WHERE rr.tenant_id = q.tenant AND rr.unique_key = q.a1 LIMIT 1) r
    WHERE q.kind = 'unique_key'
    UNION ALL
    SELECT f.k, f.failure, NULL::text
    FROM (
        SELECT q.k::int AS k,
               CASE WHEN r.room_id IS NULL THEN 'ROOM_NOT_FOUND'
                    WHEN q.a2 IS NOT NULL AND m.role IS NULL THEN 'NOT_A_MEMBER'
                    WHEN r.deleted_seq IS NOT NULL THEN 'ROOM_DELETED'
                    WHEN q.a2 IS NOT NULL AND q.kind = 'admin_message' AND m.role <> 'admin' THEN 'NOT_ROOM_ADMIN'
                    WHEN msg.deleted IS NULL THEN 'MESSAGE_NOT_FOUND'
                    WHEN msg.deleted THEN 'MESSAGE_DELETED' END AS failure
        FROM unnest(kinds, tenants, arg1, arg2, arg3) WITH ORDINALITY AS q(kind, tenant, a1, a2, a3, k)
        LEFT JOIN LATERAL (SELECT rr.room_id, rr.deleted_seq FROM rooms rr
                           WHERE rr.room_id = q.a1 AND rr.tenant_id = q.tenant) r
               ON true
        LEFT JOIN LATERAL (SELECT mm.role FROM members mm
                           WHERE mm.room_id = q.a1 AND mm.user_id = q.a2 AND mm.active) m ON true
        LEFT JOIN LATERAL (SELECT ms.deleted_seq IS NOT NULL AS deleted FROM messages ms
                           WHERE ms.message_id = q.a3 AND ms.room_id = q.a1) msg ON true
        WHERE q.kind IN ('message', 'admin_message')
    ) f
    WHERE f.failure IS NOT NULL;
END;
$$;
