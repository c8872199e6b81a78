-- Politeness shared by every process and worker: the next time a request to a host may
-- start. Each process still spaces its own requests; this row spaces everyone's.
CREATE TABLE host_slots (
    host       text PRIMARY KEY,
    next_start timestamptz NOT NULL
);
