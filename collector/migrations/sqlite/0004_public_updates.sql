-- What the public sees of an incident: published by a person, with updates in Statuspage's
-- states. Internal notes and the timeline never leave incident_events.
ALTER TABLE incidents ADD COLUMN public INTEGER NOT NULL DEFAULT 0;

CREATE TABLE public_updates (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    status          TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved')),
    body            TEXT NOT NULL,
    ts_ms           INTEGER NOT NULL,
    actor           TEXT NOT NULL
);
CREATE INDEX public_updates_incident ON public_updates (incident_id, id);
CREATE INDEX public_updates_time ON public_updates (ts_ms);
