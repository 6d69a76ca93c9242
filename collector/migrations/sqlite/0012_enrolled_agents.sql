-- Agents that enrolled with a token, and the certificates issued to them.
-- `revoked_ms` set: nothing the agent sends is stored and none of its certificates renews.
-- Enrolling the same id again (with a new token) clears it and retires every certificate
-- issued before, so a certificate taken from the old host is worth nothing.
CREATE TABLE enrolled_agents (
    agent        TEXT PRIMARY KEY NOT NULL,
    enrollment   INTEGER NOT NULL,
    enrolled_ms  INTEGER NOT NULL,
    renewed_ms   INTEGER,
    -- The newest certificate's serial and end.
    serial       TEXT NOT NULL,
    not_after_ms INTEGER NOT NULL,
    revoked_ms   INTEGER,
    revoked_by   TEXT,
    -- Random, new with every enrolment: the agent's message key is derived from the
    -- collector's key, the agent id and this (the key itself is stored nowhere here).
    key_salt     TEXT NOT NULL
);

-- Every certificate issued; a renewal must present one that is not retired.
CREATE TABLE agent_certificates (
    serial       TEXT PRIMARY KEY NOT NULL,
    agent        TEXT NOT NULL,
    issued_ms    INTEGER NOT NULL,
    not_after_ms INTEGER NOT NULL,
    retired_ms   INTEGER
);
CREATE INDEX agent_certificates_agent ON agent_certificates (agent);
