-- Enrollment tokens: what an operator hands to a new host so its agent can ask for its first
-- certificate. Only the SHA-256 of the 256-bit secret is kept. `agents` is the pattern the
-- enrolling agent's id must match; `max_uses` NULL means any number until `expires_ms`;
-- `uses` counts the enrolments made with it.
CREATE TABLE enrollment_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash TEXT NOT NULL,
    agents      TEXT NOT NULL,
    max_uses    INTEGER,
    uses        INTEGER NOT NULL DEFAULT 0,
    created_by  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
