-- The state engine's memory, so a restart decides exactly as before it.
CREATE TABLE engine_agents (
    agent           TEXT PRIMARY KEY NOT NULL,
    state           TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE engine_checks (
    agent           TEXT NOT NULL,
    check_name      TEXT NOT NULL,
    state           TEXT NOT NULL,
    PRIMARY KEY (agent, check_name)
) WITHOUT ROWID;

CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The engine's key for incidents it opened (NULL for manual and ticket incidents).
    key             TEXT UNIQUE,
    title           TEXT NOT NULL,
    summary         TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL CHECK (state IN ('triggered', 'acknowledged', 'resolved')),
    severity        TEXT NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    -- Who set the severity at triage (NULL: the rules did, and may raise it).
    severity_by     TEXT,
    urgency         TEXT NOT NULL CHECK (urgency IN ('page', 'notify')),
    source          TEXT NOT NULL CHECK (source IN ('check', 'agent_down', 'manual', 'ticket')),
    classification  TEXT NOT NULL DEFAULT 'operational'
                    CHECK (classification IN ('operational', 'security', 'personal-data-breach', 'nis2-significant')),
    aware_at_ms     INTEGER,
    agent           TEXT,
    check_name      TEXT,
    assignee        TEXT,
    runbook         TEXT,
    escalation      TEXT,
    team            TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    acked_ms        INTEGER,
    acked_by        TEXT,
    ack_until_ms    INTEGER,
    resolved_ms     INTEGER,
    resolved_by     TEXT,
    -- Paging paused: the host incident that covers it, flapping, or a silence until a time.
    suppressed_by   TEXT,
    flapping        INTEGER NOT NULL DEFAULT 0,
    muted           TEXT,
    muted_until_ms  INTEGER,
    -- Escalation position: round (restarts after an acknowledgement lapses), loop, step.
    esc_round       INTEGER NOT NULL DEFAULT 0,
    esc_loop        INTEGER NOT NULL DEFAULT 0,
    esc_step        INTEGER NOT NULL DEFAULT 0,
    -- When the escalation worker must look at it next (NULL: nothing scheduled).
    next_action_ms  INTEGER
);
CREATE INDEX incidents_due ON incidents (next_action_ms) WHERE next_action_ms IS NOT NULL;
CREATE INDEX incidents_state ON incidents (state, created_ms);
-- The ingest looks for incidents a person resolved, every second.
CREATE INDEX incidents_resolved_by_hand ON incidents (resolved_ms) WHERE key IS NOT NULL AND resolved_by != 'system';

-- The alerts (agent, check) an incident carries; '' is the host itself.
CREATE TABLE incident_alerts (
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    agent           TEXT NOT NULL,
    check_name      TEXT NOT NULL,
    status          TEXT NOT NULL,
    summary         TEXT NOT NULL,
    active          INTEGER NOT NULL,
    since_ms        INTEGER NOT NULL,
    cleared_ms      INTEGER,
    PRIMARY KEY (incident_id, agent, check_name)
) WITHOUT ROWID;

CREATE TABLE incident_components (
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    component       TEXT NOT NULL,
    PRIMARY KEY (incident_id, component)
) WITHOUT ROWID;

-- The internal timeline: every event with its actor ('system' or a person) and time.
-- `routed` = 0 marks events the escalation worker still has to turn into notices.
CREATE TABLE incident_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    ts_ms           INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    text            TEXT NOT NULL,
    routed          INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);
CREATE INDEX incident_events_unrouted ON incident_events (id) WHERE routed = 0;

-- Notices about checks that have no incident (a check started flapping).
CREATE TABLE notices (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms           INTEGER NOT NULL,
    agent           TEXT NOT NULL,
    check_name      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    text            TEXT NOT NULL,
    routed          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notices_unrouted ON notices (id) WHERE routed = 0;

-- The notification log: written (in the transaction that decided it) before it is sent.
-- `dedup` names the decision (incident, round, loop, step, target), so deciding twice is a no-op.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER REFERENCES incidents (id),
    dedup           TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    delivery        TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    created_ms      INTEGER NOT NULL,
    sent_ms         INTEGER,
    last_error      TEXT
);
CREATE INDEX notifications_due ON notifications (next_attempt_ms) WHERE state IN ('pending', 'sending');
CREATE INDEX notifications_incident ON notifications (incident_id, id);
