-- Sessions as rows of their own (issue 17): a login is a session, proved by
-- its tokens (a refresh adds one and keeps the others for a grace period)
-- and by the one-time socket tickets issued for it. Each old session
-- becomes a session with its one token. Versions leave room for the
-- migrations of other work before this one.

ALTER TABLE sessions RENAME TO old_sessions;
DROP INDEX sessions_expires_at;

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    created_at   INTEGER NOT NULL,
    -- Written at most once a minute per session, not per request.
    last_used_at INTEGER NOT NULL,
    -- The newest token's expiry.
    expires_at   INTEGER NOT NULL,
    user_agent   TEXT    NOT NULL DEFAULT ''
) STRICT;

-- A user's sessions, and their end.
CREATE INDEX sessions_user_id ON sessions (user_id);
-- Finds expired sessions (to purge them) without a full scan.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE tokens (
    -- SHA-256 of the access token; the token itself is never stored.
    hash       BLOB    PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- The session's, or the end of the grace period after a refresh.
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX tokens_session_id ON tokens (session_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE socket_tickets (
    -- SHA-256 of the ticket; deleted when used.
    hash       BLOB    PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX socket_tickets_session_id ON socket_tickets (session_id);
CREATE INDEX socket_tickets_expires_at ON socket_tickets (expires_at);

INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
SELECT row_number() OVER (ORDER BY token_hash), user_id, created_at, created_at, expires_at
FROM old_sessions;

INSERT INTO tokens (hash, session_id, expires_at)
SELECT token_hash, row_number() OVER (ORDER BY token_hash), expires_at
FROM old_sessions;

DROP TABLE old_sessions;
