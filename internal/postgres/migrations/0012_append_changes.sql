-- The write path in one round trip (issue 16): AppendChanges calls
-- append_changes, which applies the REMOVED and READ changes, numbers the
-- changes it keeps under the recipients' row locks, inserts the added
-- notifications and reads the groups the changes touched; the store then
-- inserts the changes with their groups. Each user row also counts its
-- unread notifications, moved with notification_seq under the same lock,
-- so that no action counts them.

ALTER TABLE users ADD COLUMN unread_count bigint NOT NULL DEFAULT 0;

UPDATE users u SET unread_count = c.n
FROM (SELECT recipient_id, count(*) AS n FROM notifications WHERE NOT read GROUP BY recipient_id) c
WHERE u.id = c.recipient_id;

-- append_changes records one transaction's inbox changes. p_recipients
-- holds every change's recipient, in input order; the REMOVED and READ
-- changes are given by their input index (p_rm_idx, from 1), whether each
-- is a READ (p_rm_read) and the ids it names (p_rm_ids, array literals);
-- the ADDED ones by their input index (p_add_idx) and their notifications'
-- columns.
--
-- It returns rows of one layout, told apart by kind:
--   'C', one per change it keeps, in input order: its index, id, seq, the
--        ids it changed (NULL for ADDED), the recipient's unread count right
--        after it, and the keys of the groups it touched (NULL for ADDED);
--   'G', one per group of a kept change, except a post notification's:
--        the change's index and id, ARRAY[the group's key], its actors most
--        recent first as of the change's id, and its newest notification
--        (n_id 0 when the group is empty);
--   'N', alone, when a recipient is not a user; no counter has moved then.
-- Scalars are never NULL. See the package doc for why ids are taken under
-- the recipients' row locks.
--
-- Its statements keep generic plans, made once per connection: PostgreSQL
-- would otherwise plan the statements on unnest() again on every call,
-- which costs more than running them. The one statement whose best plan
-- depends on the number of rows, the update of many recipients, is
-- planned for each call (EXECUTE).
CREATE FUNCTION append_changes(
    p_recipients bigint[],
    p_rm_idx integer[], p_rm_read boolean[], p_rm_ids text[],
    p_add_idx integer[], p_messages text[], p_actions text[], p_action_ids bigint[], p_by_users text[],
    p_contents text[], p_affected text[], p_affected_ids bigint[], p_created timestamptz[], p_group_keys text[])
RETURNS TABLE (
    kind text, idx integer, id bigint, seq bigint, ids bigint[], unread bigint, keys text[],
    actor_names text[], actor_latest bigint[], actor_counts integer[], actor_unread integer[],
    n_id bigint, n_seq bigint, n_recipient bigint, n_message text, n_action text, n_action_id bigint,
    n_by_user text, n_content text, n_affected text, n_affected_id bigint, n_read boolean,
    n_created timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
#variable_conflict use_column
DECLARE
    -- The REMOVED and READ changes that changed anything.
    k_idx integer[] := '{}';
    k_ids text[] := '{}';
    k_keys text[] := '{}';
    k_delta integer[] := '{}';
    rm record;
    got bigint[];
    got_keys text[];
    d integer;
    -- Per recipient, sorted by id: changes, unread delta, first seq,
    -- unread count before.
    rs bigint[];
    cnt bigint[];
    dsum bigint[];
    firsts bigint[];
    starts bigint[];
    locked integer;
    j integer;
    first_seq bigint;
    start_unread bigint;
    new_ids bigint[];
    -- The kept changes in input order.
    o_idx integer[];
    o_delta integer[];
    o_id bigint[];
    o_seq bigint[];
    o_unread bigint[];
BEGIN
    FOR rm IN SELECT * FROM unnest(p_rm_idx, p_rm_read, p_rm_ids) AS r (i, is_read, list) LOOP
        IF rm.is_read THEN
            WITH x AS (
                UPDATE notifications SET read = true
                WHERE recipient_id = p_recipients[rm.i] AND NOT read AND id = ANY (rm.list::bigint[])
                RETURNING id, group_key)
            SELECT array_agg(x.id ORDER BY x.id), array_agg(DISTINCT x.group_key), -count(*)
            INTO got, got_keys, d FROM x;
        ELSE
            WITH x AS (
                DELETE FROM notifications
                WHERE recipient_id = p_recipients[rm.i] AND id = ANY (rm.list::bigint[])
                RETURNING id, read, group_key)
            SELECT array_agg(x.id ORDER BY x.id), array_agg(DISTINCT x.group_key),
                -count(*) FILTER (WHERE NOT x.read)
            INTO got, got_keys, d FROM x;
        END IF;
        IF got IS NOT NULL THEN
            k_idx := k_idx || rm.i;
            k_ids := k_ids || got::text;
            k_keys := k_keys || got_keys::text;
            k_delta := k_delta || d;
        END IF;
    END LOOP;

    SELECT array_agg(k.i ORDER BY k.i), array_agg(k.delta ORDER BY k.i) INTO o_idx, o_delta
    FROM (SELECT a.i, 1 AS delta FROM unnest(p_add_idx) AS a (i)
          UNION ALL
          SELECT x.i, x.delta FROM unnest(k_idx, k_delta) AS x (i, delta)) k;
    IF o_idx IS NULL THEN
        RETURN;
    END IF;

    SELECT array_agg(g.r ORDER BY g.r), array_agg(g.c ORDER BY g.r), array_agg(g.s ORDER BY g.r)
    INTO rs, cnt, dsum
    FROM (SELECT p_recipients[o.i] AS r, count(*) AS c, sum(o.delta) AS s
          FROM unnest(o_idx, o_delta) AS o (i, delta) GROUP BY 1) g;

    -- Lock the recipients in one order, so that transactions with
    -- overlapping recipients do not deadlock, and move their counters. A
    -- few recipients are updated one by one, which takes each lock in
    -- order with a plan fixed on the primary key; many with one statement,
    -- planned for their number (EXECUTE), after locking them in order.
    IF cardinality(rs) <= 8 THEN
        firsts := '{}';
        starts := '{}';
        FOR j IN 1..cardinality(rs) LOOP
            UPDATE users SET notification_seq = notification_seq + cnt[j], unread_count = unread_count + dsum[j]
            WHERE users.id = rs[j]
            RETURNING notification_seq - cnt[j] + 1, unread_count - dsum[j] INTO first_seq, start_unread;
            IF NOT FOUND THEN
                -- Not a user: put back the counters moved so far.
                UPDATE users SET notification_seq = notification_seq - g.c, unread_count = unread_count - g.s
                FROM unnest(rs[1:j - 1], cnt[1:j - 1], dsum[1:j - 1]) AS g (id, c, s) WHERE users.id = g.id;
                EXIT;
            END IF;
            firsts := firsts || first_seq;
            starts := starts || start_unread;
        END LOOP;
    ELSE
        PERFORM FROM users WHERE users.id = ANY (rs) ORDER BY users.id FOR NO KEY UPDATE;
        GET DIAGNOSTICS locked = ROW_COUNT;
        IF locked = cardinality(rs) THEN
            EXECUTE 'WITH up AS (
                    UPDATE users u SET notification_seq = u.notification_seq + g.c, unread_count = u.unread_count + g.s
                    FROM unnest($1, $2, $3) AS g (id, c, s) WHERE u.id = g.id
                    RETURNING u.id, u.notification_seq - g.c + 1 AS first, u.unread_count - g.s AS start)
                SELECT array_agg(up.first ORDER BY up.id), array_agg(up.start ORDER BY up.id) FROM up'
            INTO firsts, starts USING rs, cnt, dsum;
        END IF;
    END IF;
    IF cardinality(firsts) IS DISTINCT FROM cardinality(rs) THEN
        RETURN QUERY SELECT 'N'::text, 0, 0::bigint, 0::bigint, NULL::bigint[], 0::bigint, NULL::text[],
            NULL::text[], NULL::bigint[], NULL::integer[], NULL::integer[],
            0::bigint, 0::bigint, 0::bigint, ''::text, ''::text, 0::bigint, ''::text, ''::text, ''::text,
            0::bigint, false, 'epoch'::timestamptz;
        RETURN;
    END IF;

    -- Only now, under the locks, the ids.
    SELECT array_agg(v ORDER BY v) INTO new_ids
    FROM (SELECT nextval('notification_ids') AS v FROM generate_series(1, cardinality(o_idx))) s;

    SELECT array_agg(o.i ORDER BY o.i), array_agg(new_ids[o.j] ORDER BY o.i),
        array_agg(o.seq ORDER BY o.i), array_agg(o.unread ORDER BY o.i)
    INTO o_idx, o_id, o_seq, o_unread
    FROM (SELECT k.i, row_number() OVER (ORDER BY k.i) AS j,
              f.first + row_number() OVER (PARTITION BY k.r ORDER BY k.i) - 1 AS seq,
              f.start + sum(k.delta) OVER (PARTITION BY k.r ORDER BY k.i) AS unread
          FROM (SELECT o.i, p_recipients[o.i] AS r, o.delta FROM unnest(o_idx, o_delta) AS o (i, delta)) k
          JOIN unnest(rs, firsts, starts) AS f (r, first, start) ON f.r = k.r) o;

    INSERT INTO notifications (id, recipient_id, seq, message, action, action_id,
        by_user, action_content, affected, affected_id, created_at, group_key)
    SELECT o.id, p_recipients[a.i], o.seq, a.message, a.action, a.action_id,
        a.by_user, nullif(a.content, ''), nullif(a.affected, ''), nullif(a.affected_id, 0), a.created, a.group_key
    FROM unnest(p_add_idx, p_messages, p_actions, p_action_ids, p_by_users, p_contents, p_affected,
            p_affected_ids, p_created, p_group_keys)
        AS a (i, message, action, action_id, by_user, content, affected, affected_id, created, group_key)
    JOIN unnest(o_idx, o_id, o_seq) AS o (i, id, seq) ON o.i = a.i;

    RETURN QUERY
    SELECT 'C'::text, o.i, o.id, o.seq, x.ids::bigint[], o.unread, x.keys::text[],
        NULL::text[], NULL::bigint[], NULL::integer[], NULL::integer[],
        0::bigint, 0::bigint, 0::bigint, ''::text, ''::text, 0::bigint, ''::text, ''::text, ''::text,
        0::bigint, false, 'epoch'::timestamptz
    FROM unnest(o_idx, o_id, o_seq, o_unread) AS o (i, id, seq, unread)
    LEFT JOIN unnest(k_idx, k_ids, k_keys) AS x (i, ids, keys) ON x.i = o.i
    ORDER BY o.i;

    RETURN QUERY
    WITH g AS (
        SELECT o.i, o.id AS bound, p_recipients[o.i] AS r, a.group_key AS key
        FROM unnest(o_idx, o_id) AS o (i, id)
        JOIN unnest(p_add_idx, p_actions, p_group_keys) AS a (i, action, group_key) ON a.i = o.i
        WHERE a.action <> 'POST'
        UNION ALL
        SELECT o.i, o.id, p_recipients[o.i], unnest(x.keys::text[])
        FROM unnest(o_idx, o_id) AS o (i, id)
        JOIN unnest(k_idx, k_keys) AS x (i, keys) ON x.i = o.i)
    SELECT 'G'::text, g.i, g.bound, 0::bigint, NULL::bigint[], 0::bigint, ARRAY[g.key],
        a.names, a.latest, a.counts, a.unread,
        coalesce(n.id, 0), coalesce(n.seq, 0), coalesce(n.recipient_id, 0), coalesce(n.message, ''),
        coalesce(n.action, ''), coalesce(n.action_id, 0), coalesce(n.by_user, ''),
        coalesce(n.action_content, ''), coalesce(n.affected, ''), coalesce(n.affected_id, 0),
        coalesce(n.read, false), coalesce(n.created_at, 'epoch')
    FROM g
    CROSS JOIN LATERAL (
        SELECT array_agg(s.by_user ORDER BY s.m DESC) AS names, array_agg(s.m ORDER BY s.m DESC) AS latest,
            array_agg(s.c ORDER BY s.m DESC) AS counts, array_agg(s.u ORDER BY s.m DESC) AS unread
        FROM (SELECT nt.by_user, max(nt.id) AS m, count(*)::integer AS c,
                  (count(*) FILTER (WHERE NOT nt.read))::integer AS u
              FROM notifications nt
              WHERE nt.recipient_id = g.r AND nt.group_key = g.key AND nt.id <= g.bound
              GROUP BY nt.by_user) s) a
    LEFT JOIN notifications n ON n.id = a.latest[1];
END
$fn$;
