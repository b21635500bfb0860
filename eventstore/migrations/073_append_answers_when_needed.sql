-- rl_append as in 006, except that the refused and the repeated requests are answered by their queries only when
-- the batch has any: the answer for repeated keys probed `events` once per request of every batch (6.8 us of
-- PostgreSQL per send in bench/send.py's pg_stat_statements) although plain sends never repeat one.

CREATE OR REPLACE FUNCTION rl_append(
    r_stream text[], r_tenant text[], r_expected bigint[], r_key text[], r_create boolean[], r_count int[],
    g_kind text[], g_arg1 text[], g_arg2 text[], g_arg3 text[],
    e_req int[], e_type text[], e_data jsonb[], e_meta jsonb[],
    channel text
) RETURNS TABLE (req int, kind text, "position" bigint, stream_id text, seq bigint, tenant_id text, type text,
                 data jsonb, metadata jsonb, created_at timestamptz, code text, detail text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n int := coalesce(array_length(r_stream, 1), 0);
    outcome text[] := array_fill(NULL::text, ARRAY[n]);   -- NULL: undecided, then 'new', 'dup' or 'error'
    err text[] := array_fill(NULL::text, ARRAY[n]);
    det text[] := array_fill(NULL::text, ARRAY[n]);
    dup_pos bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    first_seq bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    first_event int[] := array_fill(NULL::int, ARRAY[n]); -- index into e_* of each request's first event
    created text[] := '{}';
    ids text[] := '{}';
    owners text[] := '{}';
    last bigint[] := '{}';
    locked record;
    hit record;
    k int;
    j int;
    e int := 1;
    any_new boolean := false;
BEGIN
    IF true = ANY(r_create) THEN
        WITH made AS (
            INSERT INTO streams AS s (stream_id, tenant_id)
            SELECT DISTINCT q.s, q.t FROM unnest(r_stream, r_tenant, r_create) AS q(s, t, c) WHERE q.c ORDER BY q.s
            ON CONFLICT DO NOTHING RETURNING s.stream_id
        )
        SELECT coalesce(array_agg(made.stream_id), '{}') INTO created FROM made;
    END IF;

    FOR locked IN
        SELECT s.stream_id, s.tenant_id, s.last_seq FROM streams s
        WHERE s.stream_id = ANY(r_stream) ORDER BY s.stream_id FOR UPDATE
    LOOP
        ids := ids || locked.stream_id;
        owners := owners || locked.tenant_id;
        last := last || locked.last_seq;
    END LOOP;

    FOR k IN 1..n LOOP
        first_event[k] := e;
        e := e + r_count[k];
        j := array_position(ids, r_stream[k]);
        IF j IS NULL OR owners[j] <> r_tenant[k] THEN
            outcome[k] := 'error';
            err[k] := 'STREAM_NOT_FOUND';
        END IF;
    END LOOP;

    FOR hit IN
        SELECT q.k::int AS k, ev.position
        FROM unnest(r_stream, r_key) WITH ORDINALITY AS q(s, key, k)
        CROSS JOIN LATERAL (SELECT e.position FROM events e
                            WHERE e.stream_id = q.s AND e.idempotency_key = q.key LIMIT 1) ev
        WHERE q.key IS NOT NULL
    LOOP
        IF outcome[hit.k] IS NULL THEN
            outcome[hit.k] := 'dup';
            dup_pos[hit.k] := hit.position;
        END IF;
    END LOOP;

    IF g_kind IS NOT NULL THEN  -- NULL when no request of the batch has a guard
        FOR hit IN SELECT * FROM rl_guard_failures(g_kind, r_tenant, g_arg1, g_arg2, g_arg3) LOOP
            IF outcome[hit.req] IS NULL THEN
                outcome[hit.req] := 'error';
                err[hit.req] := hit.code;
                det[hit.req] := hit.detail;
            END IF;
        END LOOP;
    END IF;

    FOR k IN 1..n LOOP
        CONTINUE WHEN outcome[k] IS NOT NULL;
        j := array_position(ids, r_stream[k]);
        IF r_expected[k] IS NOT NULL AND r_expected[k] <> last[j] THEN
            outcome[k] := 'error';
            err[k] := 'SEQ_CONFLICT';
            det[k] := last[j]::text;
            CONTINUE;
        END IF;
        outcome[k] := 'new';
        any_new := true;
        first_seq[k] := last[j] + 1;
        last[j] := last[j] + r_count[k];
    END LOOP;

    -- ORDER BY the event's index: positions follow request order, hence each stream's seq order.
    RETURN QUERY
    WITH planned AS (
        SELECT u.r, u.i::int AS i, r_stream[u.r] AS s, first_seq[u.r] + (u.i - first_event[u.r]) AS sq
        FROM unnest(e_req) WITH ORDINALITY AS u(r, i)
        WHERE outcome[u.r] = 'new'
    ), ins AS (
        INSERT INTO events AS ev (stream_id, seq, tenant_id, type, data, metadata, idempotency_key)
        SELECT p.s, p.sq, r_tenant[p.r], e_type[p.i], e_data[p.i], e_meta[p.i],
               CASE WHEN p.i = first_event[p.r] THEN r_key[p.r] END
        FROM planned p ORDER BY p.i
        RETURNING ev.position, ev.stream_id, ev.seq, ev.tenant_id, ev.type, ev.data, ev.metadata, ev.created_at
    )
    SELECT p.r, 'new'::text, ins.position, ins.stream_id, ins.seq, ins.tenant_id, ins.type, ins.data,
           ins.metadata, ins.created_at, NULL::text, NULL::text
    FROM ins JOIN planned p ON p.s = ins.stream_id AND p.sq = ins.seq;

    IF any_new THEN
        UPDATE streams s SET last_seq = v.l
        FROM unnest(ids, last) AS v(id, l) WHERE s.stream_id = v.id AND s.last_seq <> v.l;
        PERFORM pg_notify(channel, '');
    END IF;
    -- A create whose request was refused (a second DM of a pair) leaves no empty stream behind.
    IF created <> '{}' THEN
        DELETE FROM streams s WHERE s.stream_id = ANY(created) AND s.last_seq = 0;
    END IF;

    IF 'error' = ANY(outcome) THEN
        RETURN QUERY
        SELECT x.k::int, 'error'::text, NULL::bigint, r_stream[x.k], NULL::bigint, r_tenant[x.k], NULL::text,
               NULL::jsonb, NULL::jsonb, NULL::timestamptz, err[x.k], det[x.k]
        FROM generate_series(1, n) AS x(k) WHERE outcome[x.k] = 'error';
    END IF;

    IF 'dup' = ANY(outcome) THEN
        RETURN QUERY
        SELECT x.k::int, 'dup'::text, ev.position, ev.stream_id, ev.seq, ev.tenant_id, ev.type, ev.data,
               ev.metadata, ev.created_at, NULL::text, NULL::text
        FROM generate_series(1, n) AS x(k)
        CROSS JOIN LATERAL (SELECT e.* FROM events e WHERE e.position = dup_pos[x.k]) ev
        WHERE outcome[x.k] = 'dup';
    END IF;
END;
$$;
