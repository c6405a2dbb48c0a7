-- The initial schema, equivalent to the SQLite store's.
--
-- Times are timestamptz (microseconds; the store reads them back in UTC).
-- Ids are bigint identity columns, except notifications.id: see below.

CREATE TABLE users (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unique ignoring case (users_username_lower); the registered case is
    -- kept. Usernames are ASCII, so lower() folds exactly what matters.
    username         text        NOT NULL,
    password_hash    bytea       NOT NULL,
    -- The Seq of the user's latest notification; bumped by AddNotifications
    -- in the transaction that inserts them, under the row's lock.
    notification_seq bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL
)
-- Room in every page for new versions of its rows: bumping notification_seq,
-- which no index covers, is then a HOT update that touches no index (a post
-- to 10,000 followers updates 10,000 rows, several times faster so).
WITH (fillfactor = 70);

-- Makes usernames unique ignoring case, and serves UserByUsername.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE sessions (
    -- SHA-256 of the access token; the token itself is never stored.
    token_hash bytea       PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Finds expired sessions (to purge them) without a full scan.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE posts (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id  bigint      NOT NULL REFERENCES users (id),
    body       text        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE comments (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id    bigint      NOT NULL REFERENCES posts (id),
    parent_id  bigint      REFERENCES comments (id),
    author_id  bigint      NOT NULL REFERENCES users (id),
    body       text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- A post's comments, oldest first.
CREATE INDEX comments_post_id ON comments (post_id, id);

CREATE TABLE reactions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id),
    kind        text        NOT NULL CHECK (kind IN ('LIKE', 'LOVE', 'LAUGH', 'WOW', 'SAD', 'ANGRY')),
    target_kind text        NOT NULL CHECK (target_kind IN ('POST', 'COMMENT')),
    target_id   bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (user_id, target_kind, target_id)
);

-- The reactions to one post or comment, oldest first.
CREATE INDEX reactions_target ON reactions (target_kind, target_id, id);

CREATE TABLE follows (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    follower_id bigint      NOT NULL REFERENCES users (id),
    followee_id bigint      NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL,
    -- Also counts whom a user follows.
    UNIQUE (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);

-- A user's followers (count and IDs), covered by the index.
CREATE INDEX follows_followee_id ON follows (followee_id, follower_id);

-- Notification ids. AddNotifications takes them with nextval while it holds
-- the row locks of the recipients, so that each recipient's ids increase in
-- commit order. CACHE 1 (the default) is required: with a per-session cache,
-- one session could hand out smaller ids after another session's greater
-- ones. Nothing else may take ids from it, hence no column default.
CREATE SEQUENCE notification_ids AS bigint CACHE 1;

CREATE TABLE notifications (
    id             bigint      PRIMARY KEY,
    recipient_id   bigint      NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    seq            bigint      NOT NULL,
    message        text        NOT NULL,
    action         text        NOT NULL CHECK (action IN ('POST', 'COMMENT', 'REACTION', 'FOLLOWING')),
    action_id      bigint      NOT NULL,
    by_user        text        NOT NULL,
    action_content text,
    affected       text        CHECK (affected IN ('POST', 'COMMENT')),
    affected_id    bigint,
    read           boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL,
    -- Also serves reading a user's notifications by Seq (catch-up, SeqAtID).
    UNIQUE (recipient_id, seq)
);

ALTER SEQUENCE notification_ids OWNED BY notifications.id;

-- A user's notifications newest first (ORDER BY id DESC, id < $n), and the
-- Seq at an ID.
CREATE INDEX notifications_recipient_id ON notifications (recipient_id, id);

-- A user's unread notifications newest first, and their count; only unread
-- rows are in it. Queries say literally "NOT read" to use it.
CREATE INDEX notifications_unread ON notifications (recipient_id, id) WHERE NOT read;
