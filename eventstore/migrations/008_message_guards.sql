-- rl_guard_failures as in 006, with guards on a message: a change to a message (an edit, a deletion, a
-- reaction) is decided on the message as read before the append, so under the lock the database checks
-- again that the message is still there and not deleted. Without it, racing deletions each recorded a
-- message.deleted, and edits decided before a deletion were recorded after it.
--
-- Kinds 'message' and 'admin_message': arg1 room_id, arg2 user_id or NULL, arg3 message_id. The message
-- must be in the room and not deleted; with a user_id that user must also be an active member of the
-- room ('message') or one of its admins ('admin_message'), as 'member' checks. A request has one guard,
-- so a message guard carries the membership the decision relied on as well.
--
-- The messages table is the messages projection's, which replay may swap like rooms and members.

CREATE OR REPLACE FUNCTION rl_guard_failures(kinds text[], tenants text[], arg1 text[], arg2 text[], arg3 text[])
RETURNS TABLE (req int, code text, detail text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT q.k::int,
           CASE WHEN r.room_id IS NULL THEN 'ROOM_NOT_FOUND'
                WHEN m.role IS NULL THEN 'NOT_A_MEMBER'
                WHEN q.a3 = 'admin' AND m.role <> 'admin' THEN 'NOT_ROOM_ADMIN' END,
           NULL::text
    FROM unnest(kinds, tenants, arg1, arg2, arg3) WITH ORDINALITY AS q(kind, tenant, a1, a2, a3, k)
    LEFT JOIN LATERAL (SELECT rr.room_id FROM rooms rr WHERE rr.room_id = q.a1 AND rr.tenant_id = q.tenant) r ON true
    LEFT JOIN LATERAL (SELECT mm.role FROM members mm
                       WHERE mm.room_id = q.a1 AND mm.user_id = q.a2 AND mm.active) m ON true
    WHERE q.kind = 'member'
      AND (r.room_id IS NULL OR m.role IS NULL OR (q.a3 = 'admin' AND m.role <> 'admin'))
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
                    WHEN q.a2 IS NOT NULL AND q.kind = 'admin_message' AND m.role <> 'admin' THEN 'NOT_ROOM_ADMIN'
                    WHEN msg.deleted IS NULL THEN 'MESSAGE_NOT_FOUND'
                    WHEN msg.deleted THEN 'MESSAGE_DELETED' END AS failure
        FROM unnest(kinds, tenants, arg1, arg2, arg3) WITH ORDINALITY AS q(kind, tenant, a1, a2, a3, k)
        LEFT JOIN LATERAL (SELECT rr.room_id FROM rooms rr WHERE rr.room_id = q.a1 AND rr.tenant_id = q.tenant) r
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
