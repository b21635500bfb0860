-- rl_guard_failures as in 031, with one more kind for sends that name media or members: 'poster_refs' is
-- 'member' with role 'poster' (arg1 the room, arg2 the sender), and arg3 a JSON object {media: [ids], mentions:
-- [user ids]}: every media id must be a confirmed upload of the sender in the tenant (else MEDIA_NOT_CONFIRMED with
-- that id) and every mentioned user an active member of the room (else MENTION_NOT_MEMBER with that user). A send
-- is checked here, under the room's lock in the append's transaction, instead of by queries of its own before it
-- (service/media/lookup.py remembers the media facts a message carries); a medium removed, or a member gone,
-- between such a query and the write can no longer slip through.

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
    SELECT q.k::int,
           CASE WHEN r.room_id IS NULL THEN 'ROOM_NOT_FOUND'
                WHEN m.role IS NULL THEN 'NOT_A_MEMBER'
                WHEN r.deleted_seq IS NOT NULL THEN 'ROOM_DELETED'
                WHEN r.who_can_post = 'admins' AND m.role <> 'admin' THEN 'POSTING_RESTRICTED'
                WHEN md.missing IS NOT NULL THEN 'MEDIA_NOT_CONFIRMED'
                ELSE 'MENTION_NOT_MEMBER' END,
           CASE WHEN r.room_id IS NOT NULL AND m.role IS NOT NULL AND r.deleted_seq IS NULL
                     AND NOT (r.who_can_post = 'admins' AND m.role <> 'admin') THEN coalesce(md.missing, mn.outsider) END
    FROM unnest(kinds, tenants, arg1, arg2, arg3) WITH ORDINALITY AS q(kind, tenant, a1, a2, a3, k)
    LEFT JOIN LATERAL (SELECT rr.room_id, rr.who_can_post, rr.deleted_seq FROM rooms rr
                       WHERE rr.room_id = q.a1 AND rr.tenant_id = q.tenant) r ON true
    LEFT JOIN LATERAL (SELECT mm.role FROM members mm
                       WHERE mm.room_id = q.a1 AND mm.user_id = q.a2 AND mm.active) m ON true
    -- One primary-key probe per media id (a NOT EXISTS was planned as an anti join over every medium of the tenant).
    LEFT JOIN LATERAL (SELECT w.id AS missing FROM jsonb_array_elements_text(q.a3::jsonb -> 'media') AS w(id)
                       LEFT JOIN LATERAL (SELECT x.status, x.uploaded_by FROM media x
                                          WHERE x.tenant_id = q.tenant AND x.media_id = w.id) x ON true
                       WHERE x.status IS DISTINCT FROM 'confirmed' OR x.uploaded_by IS DISTINCT FROM q.a2
                       LIMIT 1) md ON true
    LEFT JOIN LATERAL (SELECT w.id AS outsider FROM jsonb_array_elements_text(q.a3::jsonb -> 'mentions') AS w(id)
                       LEFT JOIN LATERAL (SELECT true AS active FROM members mt
                                          WHERE mt.room_id = q.a1 AND mt.user_id = w.id AND mt.active) mt ON true
                       WHERE mt.active IS NULL
                       LIMIT 1) mn ON true
    WHERE q.kind = 'poster_refs'
      AND (r.room_id IS NULL OR m.role IS NULL OR r.deleted_seq IS NOT NULL
           OR (r.who_can_post = 'admins' AND m.role <> 'admin') OR md.missing IS NOT NULL OR mn.outsider IS NOT NULL)
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
