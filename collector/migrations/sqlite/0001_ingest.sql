-- Agents, their lifecycle and how far their results are stored.
CREATE TABLE agents (
    agent           TEXT PRIMARY KEY NOT NULL,
    -- Lifecycle, from birth/death ordered by epoch (never by arrival).
    epoch           INTEGER NOT NULL DEFAULT 0,
    online          INTEGER NOT NULL DEFAULT 0,
    state_ts_ms     INTEGER,
    birth           TEXT,
    -- Every result with seq <= contiguous is stored, or was given up by the agent (lost).
    contiguous      INTEGER NOT NULL DEFAULT 0,
    lost            INTEGER NOT NULL DEFAULT 0,
    -- The newest heartbeat by (epoch, seq).
    hb_epoch        INTEGER NOT NULL DEFAULT 0,
    hb_seq          INTEGER NOT NULL DEFAULT 0,
    heartbeat       TEXT,
    last_seen_ms    INTEGER
);

-- Every birth and death as it arrived, and whether it changed the agent's state.
CREATE TABLE agent_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    agent           TEXT NOT NULL,
    epoch           INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    online          INTEGER NOT NULL,
    ts_ms           INTEGER NOT NULL,
    received_ms     INTEGER NOT NULL,
    applied         INTEGER NOT NULL
);
CREATE INDEX agent_events_agent ON agent_events (agent, id);

-- One row per result; the unique (agent, seq) makes a re-sent result a no-op. A rowid table,
-- not WITHOUT ROWID: rows are a few hundred bytes, and appending them in rowid order is far
-- cheaper than keeping them in (agent, seq) order (measured: ingest CPU per result).
CREATE TABLE results (
    id              INTEGER PRIMARY KEY,
    agent           TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    epoch           INTEGER NOT NULL,
    check_name      TEXT NOT NULL,
    plugin          TEXT NOT NULL,
    status          TEXT NOT NULL,
    summary         TEXT NOT NULL,
    details         TEXT,
    duration_ms     REAL NOT NULL,
    metrics         TEXT NOT NULL,
    ts_ms           INTEGER NOT NULL,
    received_ms     INTEGER NOT NULL,
    UNIQUE (agent, seq)
);
CREATE INDEX results_check ON results (agent, check_name, seq);

-- The latest result of every check, by seq.
CREATE TABLE check_state (
    agent           TEXT NOT NULL,
    check_name      TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    status          TEXT NOT NULL,
    summary         TEXT NOT NULL,
    ts_ms           INTEGER NOT NULL,
    PRIMARY KEY (agent, check_name)
) WITHOUT ROWID;
