-- The self-monitor's store probe: one row rewritten every few seconds in its own write
-- transaction, so `/readyz` knows the store takes (and syncs) writes even when no agent sends
-- anything. And the "collector degraded" incident it opened, if any, so a restart resolves
-- the same one.
CREATE TABLE collector_probe (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms   INTEGER NOT NULL,
    degraded_incident INTEGER
);
INSERT INTO collector_probe (id, at_ms) VALUES (1, 0);
