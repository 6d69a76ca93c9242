-- The postmortem of an incident, and its place in the deviation register: writing one records
-- the incident as a deviation; `follow_up` tracks it until closed.
CREATE TABLE postmortems (
    incident_id     INTEGER PRIMARY KEY NOT NULL REFERENCES incidents (id),
    summary         TEXT NOT NULL DEFAULT '',
    cause           TEXT NOT NULL DEFAULT '',
    impact          TEXT NOT NULL DEFAULT '',
    lessons         TEXT NOT NULL DEFAULT '',
    follow_up       TEXT NOT NULL DEFAULT 'open' CHECK (follow_up IN ('open', 'in-progress', 'closed')),
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    updated_by      TEXT NOT NULL,
    closed_ms       INTEGER
) WITHOUT ROWID;

-- What the supervisory authority asks about a personal-data breach (GDPR Art. 33(3)); every
-- incident classified personal-data-breach is in the breach register, reported or not.
CREATE TABLE breaches (
    incident_id         INTEGER PRIMARY KEY NOT NULL REFERENCES incidents (id),
    nature              TEXT NOT NULL DEFAULT '',
    subject_categories  TEXT NOT NULL DEFAULT '',
    subjects_approx     INTEGER,
    record_categories   TEXT NOT NULL DEFAULT '',
    records_approx      INTEGER,
    consequences        TEXT NOT NULL DEFAULT '',
    measures            TEXT NOT NULL DEFAULT '',
    contact             TEXT NOT NULL DEFAULT '',
    -- Why it was not reported, when it is not (Art. 33(1): unlikely to result in a risk).
    not_reported_reason TEXT NOT NULL DEFAULT '',
    updated_ms          INTEGER NOT NULL,
    updated_by          TEXT NOT NULL
) WITHOUT ROWID;

-- Time per component and UTC day in each status, for uptime (90-day bars, yearly report).
CREATE TABLE component_days (
    component       TEXT NOT NULL,
    day             TEXT NOT NULL,
    operational_ms  INTEGER NOT NULL DEFAULT 0,
    degraded_ms     INTEGER NOT NULL DEFAULT 0,
    partial_ms      INTEGER NOT NULL DEFAULT 0,
    major_ms        INTEGER NOT NULL DEFAULT 0,
    maintenance_ms  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (component, day)
) WITHOUT ROWID;
