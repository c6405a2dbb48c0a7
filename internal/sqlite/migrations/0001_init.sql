-- The initial schema.
--
-- Times are INTEGER unix milliseconds (UTC). Every table is STRICT, so a
-- value of the wrong type is an error rather than silently stored.

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    -- Unique ignoring (ASCII) case; the registered case is kept.
    username         TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    password_hash    BLOB    NOT NULL,
    -- The Seq of the user's latest notification; bumped by AddNotifications
    -- in the transaction that inserts them.
    notification_seq INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    -- SHA-256 of the access token; the token itself is never stored.
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Finds expired sessions (to purge them) without a full scan.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE posts (
    id         INTEGER PRIMARY KEY,
    author_id  INTEGER NOT NULL REFERENCES users (id),
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY,
    post_id    INTEGER NOT NULL REFERENCES posts (id),
    parent_id  INTEGER REFERENCES comments (id),
    author_id  INTEGER NOT NULL REFERENCES users (id),
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- A post's comments, oldest first: every index entry ends with the rowid (id).
CREATE INDEX comments_post_id ON comments (post_id);

CREATE TABLE reactions (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    kind        TEXT    NOT NULL CHECK (kind IN ('LIKE', 'LOVE', 'LAUGH', 'WOW', 'SAD', 'ANGRY')),
    target_kind TEXT    NOT NULL CHECK (target_kind IN ('POST', 'COMMENT')),
    target_id   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (user_id, target_kind, target_id)
) STRICT;

-- The reactions to one post or comment, oldest first.
CREATE INDEX reactions_target ON reactions (target_kind, target_id);

CREATE TABLE follows (
    id          INTEGER PRIMARY KEY,
    follower_id INTEGER NOT NULL REFERENCES users (id),
    followee_id INTEGER NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    UNIQUE (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
) STRICT;

-- A user's followers (count and IDs), covered by the index.
CREATE INDEX follows_followee_id ON follows (followee_id, follower_id);

CREATE TABLE notifications (
    -- AUTOINCREMENT: an id is never reused, and since SQLite runs one write
    -- transaction at a time, ids increase in commit order.
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient_id   INTEGER NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    seq            INTEGER NOT NULL,
    message        TEXT    NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN ('POST', 'COMMENT', 'REACTION', 'FOLLOWING')),
    action_id      INTEGER NOT NULL,
    by_user        TEXT    NOT NULL,
    action_content TEXT,
    affected       TEXT    CHECK (affected IN ('POST', 'COMMENT')),
    affected_id    INTEGER,
    read           INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
    created_at     INTEGER NOT NULL,
    -- Also serves reading a user's notifications by Seq (catch-up).
    UNIQUE (recipient_id, seq)
) STRICT;

-- A user's notifications newest first (ORDER BY id DESC, id < ?): every
-- index entry ends with the rowid (id).
CREATE INDEX notifications_recipient_id ON notifications (recipient_id);

-- A user's unread notifications newest first, and their count; only unread
-- rows are in it.
CREATE INDEX notifications_unread ON notifications (recipient_id) WHERE read = 0;
