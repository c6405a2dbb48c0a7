-- Each group's state kept in rows that every change updates (issue 16). A
-- change used to count its group's notifications, actors and unread ones
-- over every notification of the group: a reaction to a post with 1,000
-- reactions read 1,000 rows. Now it reads and writes two rows, which share
-- a page: the group's own and its actor's. A post notification's group is
-- the notification alone and has no rows here.
CREATE TABLE inbox_groups (
    recipient_id  INTEGER NOT NULL,
    group_key     TEXT    NOT NULL,
    -- '' for the group's own row; an actor's username for how many of the
    -- group's notifications the actor caused (the row goes at 0).
    actor         TEXT    NOT NULL,
    notifications INTEGER NOT NULL,
    -- The group's own row only: its unread notifications, its distinct
    -- actors (its actor rows), and its most recent actors, at most three,
    -- most recent first, each with the id of its newest notification in the
    -- group (a JSON array of {"u": username, "id": id}).
    unread        INTEGER NOT NULL DEFAULT 0,
    actors        INTEGER NOT NULL DEFAULT 0,
    recent        TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (recipient_id, group_key, actor)
) STRICT, WITHOUT ROWID;

CREATE TEMP TABLE group_actors AS
SELECT n.recipient_id, n.group_key, e.by_user AS actor, count(*) AS notifications,
    count(*) - sum(n.read) AS unread, max(n.id) AS latest
FROM notifications n JOIN notification_events e ON e.id = n.event_id
WHERE e.action <> 'POST'
GROUP BY n.recipient_id, n.group_key, e.by_user;

INSERT INTO inbox_groups (recipient_id, group_key, actor, notifications)
SELECT recipient_id, group_key, actor, notifications FROM group_actors;

-- Each group's most recent actors below, found by key: without the index
-- every group would scan every actor.
CREATE INDEX temp.group_actors_latest ON group_actors (recipient_id, group_key, latest);

INSERT INTO inbox_groups (recipient_id, group_key, actor, notifications, unread, actors, recent)
SELECT recipient_id, group_key, '', sum(notifications), sum(unread), count(*),
    (SELECT json_group_array(json_object('u', r.actor, 'id', r.latest) ORDER BY r.latest DESC)
     FROM (SELECT actor, latest FROM group_actors r
           WHERE r.recipient_id = g.recipient_id AND r.group_key = g.group_key
           ORDER BY latest DESC LIMIT 3) r)
FROM group_actors g
GROUP BY recipient_id, group_key;

DROP TABLE group_actors;
