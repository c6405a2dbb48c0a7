-- append_changes with fewer queries (issue 16). PostgreSQL spent about
-- half of a reaction's CPU in this function, most of it starting the
-- executor for each of its dozen queries, though a reaction appends one
-- ADDED change. Now the steps that sort, group and number many changes
-- are PL/pgSQL expressions when there is one change, or only ADDED ones;
-- the REMOVED and READ steps are skipped when there are none; and a
-- group's row keeps its three most recent actors, which an added
-- notification updates instead of reading the group's newest
-- notifications (group_recent, still used after a removal). A reaction
-- runs five queries: its recipient's counters, its notification, its
-- group's rows, and its 'C' and 'G' rows. Same arguments and rows as the
-- function of migration 13.

-- Each group's three most recent actors, most recent first, with the id
-- of each one's newest notification in the group: what group_recent finds,
-- kept in the group's row so that an added notification, the group's
-- newest, updates them without reading the group.
ALTER TABLE inbox_groups ADD COLUMN recent_names text[] NOT NULL DEFAULT '{}',
    ADD COLUMN recent_ids bigint[] NOT NULL DEFAULT '{}';

UPDATE inbox_groups x SET recent_names = r.names, recent_ids = r.ids
FROM inbox_groups g
CROSS JOIN LATERAL (
    SELECT array_agg(a.by_user ORDER BY a.latest DESC) AS names, array_agg(a.latest ORDER BY a.latest DESC) AS ids
    FROM group_recent(g.recipient_id, g.group_key, 9223372036854775807, least(g.actors, 3)) a) r
WHERE x.recipient_id = g.recipient_id AND x.group_key = g.group_key AND r.names IS NOT NULL;

CREATE OR REPLACE FUNCTION append_changes(
    p_recipients bigint[],
    p_rm_idx integer[], p_rm_read boolean[], p_rm_ids text[],
    p_add_idx integer[], p_messages text[], p_actions text[], p_action_ids bigint[], p_by_users text[],
    p_contents text[], p_affected text[], p_affected_ids bigint[], p_created timestamptz[], p_group_keys text[])
RETURNS TABLE (
    kind text, idx integer, id bigint, seq bigint, ids bigint[], unread bigint, keys text[],
    actor_names text[], actor_latest bigint[], g_notifications integer, g_unread integer, g_actors integer,
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
    got_users text[];
    got_unread boolean[];
    d integer;
    -- The notifications that the kept REMOVED and READ changes changed: the
    -- change's index, the group's key, the actor, whether it was unread.
    t_idx integer[] := '{}';
    t_keys text[] := '{}';
    t_users text[] := '{}';
    t_unread boolean[] := '{}';
    t_is_read boolean[] := '{}';
    -- The groups to update and read, in the order of their changes and
    -- keys: the change's index and id, the recipient, the key, the actor
    -- of an ADDED change, whether it is one, and how many notifications a
    -- REMOVED or READ change removed from the group and made read.
    g_i integer[];
    g_bound bigint[];
    g_key text[];
    g_actor text[];
    g_added boolean[];
    g_removed integer[];
    g_unread integer[];
    e_i integer;
    e_bound bigint;
    e_r bigint;
    e_key text;
    e_actor text;
    e_added boolean;
    e_removed integer;
    e_unread integer;
    -- A group's state, as each change leaves it.
    au record;
    v_count integer;
    v_left integer;
    v_n integer;
    v_u integer;
    v_a integer;
    v_names text[];
    v_ids bigint[];

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
    -- What one action appends is most often one ADDED change: below, the
    -- steps that are queries for many changes are plain PL/pgSQL
    -- expressions for that one, which PostgreSQL evaluates without
    -- starting an executor (a query costs tens of microseconds).
    IF cardinality(p_rm_idx) > 0 THEN
        FOR rm IN SELECT * FROM unnest(p_rm_idx, p_rm_read, p_rm_ids) AS r (i, is_read, list) LOOP
            IF rm.is_read THEN
                WITH x AS (
                    UPDATE notifications SET read = true
                    WHERE recipient_id = p_recipients[rm.i] AND NOT read AND id = ANY (rm.list::bigint[])
                    RETURNING id, group_key, by_user)
                SELECT array_agg(x.id ORDER BY x.id), array_agg(x.group_key ORDER BY x.id),
                    array_agg(x.by_user ORDER BY x.id), array_agg(true), -count(*)
                INTO got, got_keys, got_users, got_unread, d FROM x;
            ELSE
                WITH x AS (
                    DELETE FROM notifications
                    WHERE recipient_id = p_recipients[rm.i] AND id = ANY (rm.list::bigint[])
                    RETURNING id, read, group_key, by_user)
                SELECT array_agg(x.id ORDER BY x.id), array_agg(x.group_key ORDER BY x.id),
                    array_agg(x.by_user ORDER BY x.id), array_agg(NOT x.read ORDER BY x.id),
                    -count(*) FILTER (WHERE NOT x.read)
                INTO got, got_keys, got_users, got_unread, d FROM x;
            END IF;
            IF got IS NOT NULL THEN
                k_idx := k_idx || rm.i;
                k_ids := k_ids || got::text;
                k_keys := k_keys || (SELECT array_agg(DISTINCT k) FROM unnest(got_keys) AS k)::text;
                k_delta := k_delta || d;
                t_idx := t_idx || array_fill(rm.i, ARRAY[cardinality(got)]);
                t_keys := t_keys || got_keys;
                t_users := t_users || got_users;
                t_unread := t_unread || got_unread;
                t_is_read := t_is_read || array_fill(rm.is_read, ARRAY[cardinality(got)]);
            END IF;
        END LOOP;
    END IF;

    IF cardinality(k_idx) = 0 THEN
        -- Only ADDED changes, in input order already.
        IF coalesce(cardinality(p_add_idx), 0) = 0 THEN
            RETURN;
        END IF;
        o_idx := p_add_idx;
        o_delta := array_fill(1, ARRAY[cardinality(p_add_idx)]);
    ELSE
        SELECT array_agg(k.i ORDER BY k.i), array_agg(k.delta ORDER BY k.i) INTO o_idx, o_delta
        FROM (SELECT a.i, 1 AS delta FROM unnest(p_add_idx) AS a (i)
              UNION ALL
              SELECT x.i, x.delta FROM unnest(k_idx, k_delta) AS x (i, delta)) k;
    END IF;

    IF cardinality(o_idx) = 1 THEN
        rs := ARRAY[p_recipients[o_idx[1]]];
        cnt := ARRAY[1::bigint];
        dsum := ARRAY[o_delta[1]::bigint];
    ELSE
        SELECT array_agg(g.r ORDER BY g.r), array_agg(g.c ORDER BY g.r), array_agg(g.s ORDER BY g.r)
        INTO rs, cnt, dsum
        FROM (SELECT p_recipients[o.i] AS r, count(*) AS c, sum(o.delta) AS s
              FROM unnest(o_idx, o_delta) AS o (i, delta) GROUP BY 1) g;
    END IF;

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
            NULL::text[], NULL::bigint[], 0, 0, 0,
            0::bigint, 0::bigint, 0::bigint, ''::text, ''::text, 0::bigint, ''::text, ''::text, ''::text,
            0::bigint, false, 'epoch'::timestamptz;
        RETURN;
    END IF;

    -- Only now, under the locks, the ids.
    IF cardinality(o_idx) = 1 THEN
        o_id := ARRAY[nextval('notification_ids')];
        o_seq := firsts;
        o_unread := ARRAY[starts[1] + o_delta[1]];
    ELSE
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
    END IF;

    IF cardinality(p_add_idx) > 0 THEN
        INSERT INTO notifications (id, recipient_id, seq, message, action, action_id,
            by_user, action_content, affected, affected_id, created_at, group_key)
        SELECT o.id, p_recipients[a.i], o.seq, a.message, a.action, a.action_id,
            a.by_user, nullif(a.content, ''), nullif(a.affected, ''), nullif(a.affected_id, 0), a.created, a.group_key
        FROM unnest(p_add_idx, p_messages, p_actions, p_action_ids, p_by_users, p_contents, p_affected,
                p_affected_ids, p_created, p_group_keys)
            AS a (i, message, action, action_id, by_user, content, affected, affected_id, created, group_key)
        JOIN unnest(o_idx, o_id, o_seq) AS o (i, id, seq) ON o.i = a.i;
    END IF;

    RETURN QUERY
    SELECT 'C'::text, o.i, o.id, o.seq, x.ids::bigint[], o.unread, x.keys::text[],
        NULL::text[], NULL::bigint[], 0, 0, 0,
        0::bigint, 0::bigint, 0::bigint, ''::text, ''::text, 0::bigint, ''::text, ''::text, ''::text,
        0::bigint, false, 'epoch'::timestamptz
    FROM unnest(o_idx, o_id, o_seq, o_unread) AS o (i, id, seq, unread)
    LEFT JOIN unnest(k_idx, k_ids, k_keys) AS x (i, ids, keys) ON x.i = o.i
    ORDER BY o.i;

    -- Each touched group's rows, change by change in input order, and its
    -- state right after the change: totals and most recent actors from its
    -- row (after a removal the actors from its newest notifications,
    -- group_recent), and the newest notification. A post notification's
    -- group is the notification alone: it has no rows, and its totals are
    -- counted from it.
    IF cardinality(k_idx) = 0 THEN
        -- Only ADDED changes: a group each, in input order.
        g_i := o_idx;
        g_bound := o_id;
        g_key := p_group_keys;
        g_actor := p_by_users;
        g_added := array_fill(true, ARRAY[cardinality(o_idx)]);
    ELSE
        SELECT array_agg(x.i ORDER BY x.i, x.key), array_agg(x.bound ORDER BY x.i, x.key),
            array_agg(x.key ORDER BY x.i, x.key), array_agg(x.actor ORDER BY x.i, x.key),
            array_agg(x.added ORDER BY x.i, x.key), array_agg(x.removed ORDER BY x.i, x.key),
            array_agg(x.unread ORDER BY x.i, x.key)
        INTO g_i, g_bound, g_key, g_actor, g_added, g_removed, g_unread
        FROM (SELECT o.i, o.id AS bound, p_recipients[o.i] AS r, a.group_key AS key, a.by_user AS actor, true AS added,
                0 AS removed, 0 AS unread
            FROM unnest(o_idx, o_id) AS o (i, id)
            JOIN unnest(p_add_idx, p_actions, p_group_keys, p_by_users) AS a (i, action, group_key, by_user) ON a.i = o.i
            WHERE a.action <> 'POST'
            UNION ALL
            SELECT o.i, o.id, p_recipients[o.i], t.key, NULL, false,
                count(*) FILTER (WHERE NOT t.is_read)::integer, count(*) FILTER (WHERE t.unread)::integer
            FROM unnest(o_idx, o_id) AS o (i, id)
            JOIN unnest(t_idx, t_keys, t_unread, t_is_read) AS t (i, key, unread, is_read) ON t.i = o.i
            -- A removed post notification's group is empty: the store says so
            -- without asking.
            WHERE t.is_read OR t.key NOT LIKE 'POST:%'
            GROUP BY o.i, o.id, t.key) x;
    END IF;
    FOR j IN 1..coalesce(cardinality(g_i), 0) LOOP
        CONTINUE WHEN g_added[j] AND g_key[j] LIKE 'POST:%';
        e_i := g_i[j];
        e_bound := g_bound[j];
        e_r := p_recipients[e_i];
        e_key := g_key[j];
        e_actor := g_actor[j];
        e_added := g_added[j];
        e_removed := g_removed[j];
        e_unread := g_unread[j];
        IF e_key LIKE 'POST:%' THEN
            SELECT count(*), count(*) FILTER (WHERE NOT nt.read), count(DISTINCT nt.by_user) INTO v_n, v_u, v_a
            FROM notifications nt WHERE nt.recipient_id = e_r AND nt.group_key = e_key AND nt.id <= e_bound;
        ELSIF e_added THEN
            -- The actor's row, then the group's, which gains an actor when
            -- the actor's row is new.
            WITH actor AS (
                INSERT INTO inbox_group_actors AS x (recipient_id, group_key, by_user, notifications)
                VALUES (e_r, e_key, e_actor, 1)
                ON CONFLICT (recipient_id, group_key, by_user) DO UPDATE SET notifications = x.notifications + 1
                RETURNING x.notifications)
            -- The added notification is the group's newest: its actor goes
            -- first among the recent ones, and leaves the place it had.
            INSERT INTO inbox_groups AS x (recipient_id, group_key, notifications, unread, actors,
                recent_names, recent_ids)
            SELECT e_r, e_key, 1, 1, CASE WHEN actor.notifications = 1 THEN 1 ELSE 0 END,
                ARRAY[e_actor], ARRAY[e_bound] FROM actor
            ON CONFLICT (recipient_id, group_key) DO UPDATE SET notifications = x.notifications + 1,
                unread = x.unread + 1, actors = x.actors + excluded.actors,
                recent_names = (ARRAY[e_actor] || array_remove(x.recent_names, e_actor))[1:3],
                recent_ids = (ARRAY[e_bound] || CASE WHEN e_actor = ANY (x.recent_names)
                    THEN x.recent_ids[:array_position(x.recent_names, e_actor) - 1]
                        || x.recent_ids[array_position(x.recent_names, e_actor) + 1:]
                    ELSE x.recent_ids END)[1:3]
            RETURNING x.notifications, x.unread, x.actors, x.recent_names, x.recent_ids
            INTO v_n, v_u, v_a, v_names, v_ids;
        ELSE
            v_left := 0;
            FOR au IN
                SELECT t.u, count(*)::integer AS n
                FROM unnest(t_idx, t_keys, t_users, t_is_read) AS t (i, key, u, is_read)
                WHERE t.i = e_i AND t.key = e_key AND NOT t.is_read
                GROUP BY t.u ORDER BY t.u
            LOOP
                UPDATE inbox_group_actors x SET notifications = x.notifications - au.n
                WHERE x.recipient_id = e_r AND x.group_key = e_key AND x.by_user = au.u
                RETURNING x.notifications INTO v_count;
                IF v_count <= 0 THEN
                    DELETE FROM inbox_group_actors x
                    WHERE x.recipient_id = e_r AND x.group_key = e_key AND x.by_user = au.u;
                    v_left := v_left + 1;
                END IF;
            END LOOP;
            UPDATE inbox_groups x SET notifications = x.notifications - e_removed, unread = x.unread - e_unread,
                actors = x.actors - v_left
            WHERE x.recipient_id = e_r AND x.group_key = e_key
            RETURNING x.notifications, x.unread, x.actors INTO v_n, v_u, v_a;
            IF v_n <= 0 THEN
                DELETE FROM inbox_groups x WHERE x.recipient_id = e_r AND x.group_key = e_key;
                v_n := 0; v_u := 0; v_a := 0;
            END IF;
        END IF;
        IF NOT e_added THEN
            -- A removal may change the recent actors: they are found again
            -- among the group's newest notifications.
            SELECT array_agg(g.by_user ORDER BY g.latest DESC), array_agg(g.latest ORDER BY g.latest DESC)
            INTO v_names, v_ids
            FROM group_recent(e_r, e_key, e_bound, least(v_a, 3)) g;
            IF v_n > 0 AND e_key NOT LIKE 'POST:%' THEN
                UPDATE inbox_groups x SET recent_names = coalesce(v_names, '{}'), recent_ids = coalesce(v_ids, '{}')
                WHERE x.recipient_id = e_r AND x.group_key = e_key;
            END IF;
        END IF;
        RETURN QUERY
        SELECT 'G'::text, e_i, e_bound, 0::bigint, NULL::bigint[], 0::bigint, ARRAY[e_key::text],
            v_names, v_ids, v_n, v_u, v_a,
            coalesce(n.id, 0), coalesce(n.seq, 0), coalesce(n.recipient_id, 0), coalesce(n.message, ''),
            coalesce(n.action, ''), coalesce(n.action_id, 0), coalesce(n.by_user, ''),
            coalesce(n.action_content, ''), coalesce(n.affected, ''), coalesce(n.affected_id, 0),
            coalesce(n.read, false), coalesce(n.created_at, 'epoch')
        FROM (SELECT v_ids[1] AS latest) one LEFT JOIN notifications n ON n.id = one.latest;
    END LOOP;
END
$fn$;
