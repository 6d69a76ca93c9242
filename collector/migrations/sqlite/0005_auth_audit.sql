-- People who operate the collector. Passwords are argon2id PHC strings; nothing else about a
-- person is kept here (contact points live in collector.toml).
CREATE TABLE users (
    name            TEXT PRIMARY KEY NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('viewer', 'technician', 'admin')),
    password        TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    disabled_ms     INTEGER
) WITHOUT ROWID;

-- Browser sessions. Only the SHA-256 of the cookie value is stored, so a copy of the database
-- does not let anyone in. The CSRF token is per session.
CREATE TABLE sessions (
    id_hash         TEXT PRIMARY KEY NOT NULL,
    user_name       TEXT NOT NULL REFERENCES users (name),
    csrf            TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    source          TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_name);

-- API tokens: shown once, stored as SHA-256 of their 256-bit secret, scoped and expiring.
CREATE TABLE tokens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name       TEXT NOT NULL REFERENCES users (name),
    name            TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    secret_hash     TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    last_used_ms    INTEGER,
    revoked_ms      INTEGER
);

-- The audit trail: append-only and hash-chained. `hash` = SHA-256 over the previous record's
-- hash and this record's canonical JSON (seq included), so an edit, a deletion or a
-- reordering breaks the chain at the first record touched (`vakt-collector audit verify`).
CREATE TABLE audit (
    seq             INTEGER PRIMARY KEY NOT NULL,
    ts_ms           INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    role            TEXT NOT NULL,
    action          TEXT NOT NULL,
    object          TEXT NOT NULL,
    before_digest   TEXT NOT NULL,
    after_digest    TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    source          TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    detail          TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
