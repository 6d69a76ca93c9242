-- Regulatory reports filed for classified incidents (GDPR Art. 33, NIS2 Art. 23).
CREATE TABLE regulatory_reports (
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    report          TEXT NOT NULL CHECK (report IN ('gdpr-art33', 'nis2-early-warning', 'nis2-notification', 'nis2-final')),
    submitted_ms    INTEGER NOT NULL,
    submitted_by    TEXT NOT NULL,
    reference       TEXT,
    PRIMARY KEY (incident_id, report)
) WITHOUT ROWID;

-- Follow-up actions from an incident's postmortem, with owner and due date.
CREATE TABLE postmortem_actions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    text            TEXT NOT NULL,
    owner           TEXT NOT NULL,
    due_ms          INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    done_ms         INTEGER,
    done_by         TEXT
);
CREATE INDEX postmortem_actions_open ON postmortem_actions (due_ms) WHERE done_ms IS NULL;
