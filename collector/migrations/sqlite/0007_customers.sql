-- Customers, their contacts and what they use; which customers an incident affects (derived
-- from its components and agents, edited at triage); and status-page subscribers.
CREATE TABLE customers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    lang            TEXT NOT NULL CHECK (lang IN ('sv', 'en')),
    created_ms      INTEGER NOT NULL
);

CREATE TABLE customer_contacts (
    customer_id     INTEGER NOT NULL REFERENCES customers (id),
    email           TEXT NOT NULL,
    PRIMARY KEY (customer_id, email)
) WITHOUT ROWID;

CREATE TABLE customer_uses (
    customer_id     INTEGER NOT NULL REFERENCES customers (id),
    kind            TEXT NOT NULL CHECK (kind IN ('component', 'agent')),
    name            TEXT NOT NULL,
    PRIMARY KEY (customer_id, kind, name)
) WITHOUT ROWID;
CREATE INDEX customer_uses_name ON customer_uses (kind, name);

-- Triage edits of the derived set: included = 1 adds a customer, 0 removes one.
CREATE TABLE incident_customers (
    incident_id     INTEGER NOT NULL REFERENCES incidents (id),
    customer_id     INTEGER NOT NULL REFERENCES customers (id),
    included        INTEGER NOT NULL,
    PRIMARY KEY (incident_id, customer_id)
) WITHOUT ROWID;

-- How the incident is communicated once someone has: 'direct' (e-mail to the affected
-- customers' contacts) or 'public' (the status page).
ALTER TABLE incidents ADD COLUMN communication TEXT CHECK (communication IN ('direct', 'public'));

-- Subscribers keep only an address, a language and the components they follow ('' = all).
-- The token confirms the subscription and ends it (it grants nothing else, so it is kept
-- as is: every message carries it in its unsubscribe link).
CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    email           TEXT NOT NULL UNIQUE,
    lang            TEXT NOT NULL CHECK (lang IN ('sv', 'en')),
    components      TEXT NOT NULL,
    token           TEXT NOT NULL UNIQUE,
    created_ms      INTEGER NOT NULL,
    confirmed_ms    INTEGER
);
