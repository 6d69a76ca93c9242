-- Maintenance windows and silences made at runtime (web UI, API), next to those in
-- collector.toml. A maintenance naming components shows on the status page and mutes their
-- checks; a silence mutes paging for what it matches. Cancelling ends a window now.
CREATE TABLE windows (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN ('maintenance', 'silence')),
    reason          TEXT NOT NULL,
    components      TEXT NOT NULL DEFAULT '',
    agents          TEXT,
    checks          TEXT,
    start_ms        INTEGER NOT NULL,
    end_ms          INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    created_ms      INTEGER NOT NULL
);
