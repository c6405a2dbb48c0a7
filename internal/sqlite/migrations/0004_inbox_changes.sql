-- Every change to a user's inbox (issue 15): a notification ADDED, REMOVED
-- or marked READ, at the next position of the user's sequence. Changes and
-- notifications share that sequence: an ADDED change has its notification's
-- id and seq, and the other kinds take ids from the same counter (the
-- greatest id of this table, which never loses a row). Part 3 of issue 15
-- (grouped notifications) will record the groups each change touched.
CREATE TABLE inbox_changes (
    id           INTEGER PRIMARY KEY,
    recipient_id INTEGER NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    seq          INTEGER NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('ADDED', 'REMOVED', 'READ')),
    -- REMOVED and READ: the notification ids, comma-separated; ADDED: NULL
    -- (the notification's id is the change's).
    ids          TEXT,
    -- The recipient's unread count right after the change.
    unread_count INTEGER NOT NULL,
    UNIQUE (recipient_id, seq)
) STRICT;

-- Every notification stored so far was added by a change of its own; their
-- unread counts are rebuilt from today's read flags.
INSERT INTO inbox_changes (id, recipient_id, seq, kind, unread_count)
SELECT id, recipient_id, seq, 'ADDED', sum(1 - read) OVER (PARTITION BY recipient_id ORDER BY seq)
FROM notifications;

-- The notifications an action caused, to remove them with it.
CREATE INDEX notifications_cause ON notifications (action, action_id);
