-- Each notification stored once (issue 16). A post to 10,000 followers
-- wrote 10,000 full copies of one notification; now it writes one event
-- (what happened, who did it, to what) and 10,000 thin rows (recipient,
-- position, read flag). Every notification stored so far becomes an event
-- of its own, with its id.
CREATE TABLE notification_events (
    id             INTEGER PRIMARY KEY,
    message        TEXT    NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN ('POST', 'COMMENT', 'REACTION', 'FOLLOWING')),
    action_id      INTEGER NOT NULL,
    by_user        TEXT    NOT NULL,
    action_content TEXT,
    affected       TEXT    CHECK (affected IN ('POST', 'COMMENT')),
    affected_id    INTEGER,
    created_at     INTEGER NOT NULL,
    group_key      TEXT    NOT NULL,
    -- The ids of the event's notifications are in [first_id, last_id]: one
    -- transaction stores them all, and its changes' ids are consecutive.
    -- That finds them without an index entry per notification.
    first_id       INTEGER NOT NULL,
    last_id        INTEGER NOT NULL
) STRICT;

-- The events an action caused, to remove their notifications with it.
CREATE INDEX notification_events_cause ON notification_events (action, action_id);

INSERT INTO notification_events (id, message, action, action_id, by_user, action_content, affected,
    affected_id, created_at, group_key, first_id, last_id)
SELECT id, message, action, action_id, by_user, action_content, affected, affected_id, created_at, group_key, id, id
FROM notifications;

ALTER TABLE notifications RENAME TO old_notifications;

-- One recipient's notification of an event, which is also the ADDED change
-- that added it: its id and Seq are the change's, and it keeps the
-- change's unread count and groups. When the notification is removed, the
-- ADDED change moves to inbox_changes. So a fan-out writes one row per
-- recipient, not a notification and a change.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY,
    recipient_id INTEGER NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps (shared with inbox_changes).
    seq          INTEGER NOT NULL,
    -- Not a foreign key, nor inbox_changes.event_id: events are never
    -- deleted, and a migration can rebuild notification_events (to change
    -- its CHECK) without its children in the way.
    event_id     INTEGER NOT NULL,
    read         INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
    -- The event's, copied for the index below.
    group_key    TEXT    NOT NULL,
    -- The ADDED change's: the recipient's unread count right after it, and
    -- the groups it touched (social.MarshalGroups); NULL for a post
    -- notification, whose group is the notification alone (social.PostGroup).
    unread_count INTEGER NOT NULL,
    groups       TEXT,
    UNIQUE (recipient_id, seq)
) STRICT;

INSERT INTO notifications (id, recipient_id, seq, event_id, read, group_key, unread_count, groups)
SELECT n.id, n.recipient_id, n.seq, n.id, n.read, n.group_key, coalesce(c.unread_count, 0), c.groups
FROM old_notifications n LEFT JOIN inbox_changes c ON c.id = n.id;

DROP TABLE old_notifications;

-- A user's unread notifications newest first; only unread rows are in it.
CREATE INDEX notifications_unread ON notifications (recipient_id) WHERE read = 0;
-- A group's notifications, and a user's groups by their newest one.
CREATE INDEX notifications_group ON notifications (recipient_id, group_key, id);

-- Each user's inbox in one row: the Seq of its latest change and its
-- unread count, bumped by the transaction that records changes, instead of
-- max(seq) and count(*) over the user's rows on every change. Every user
-- has one, made with the user.
CREATE TABLE inbox_state (
    user_id  INTEGER PRIMARY KEY REFERENCES users (id),
    last_seq INTEGER NOT NULL DEFAULT 0,
    unread   INTEGER NOT NULL DEFAULT 0
) STRICT;

INSERT INTO inbox_state (user_id, last_seq, unread)
SELECT id,
    max(coalesce((SELECT max(seq) FROM inbox_changes WHERE recipient_id = users.id), 0),
        coalesce((SELECT max(seq) FROM notifications WHERE recipient_id = users.id), 0)),
    (SELECT count(*) FROM notifications WHERE recipient_id = users.id AND read = 0)
FROM users;

CREATE TRIGGER users_inbox_state AFTER INSERT ON users BEGIN
    INSERT INTO inbox_state (user_id) VALUES (new.id);
END;

-- Changes to inboxes other than the notifications there: REMOVED and READ
-- changes, and the ADDED changes of notifications removed since, with the
-- event they added (NULL for those removed before this migration).
DELETE FROM inbox_changes WHERE kind = 'ADDED' AND id IN (SELECT id FROM notifications);

ALTER TABLE inbox_changes ADD COLUMN event_id INTEGER;
