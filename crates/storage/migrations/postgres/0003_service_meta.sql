-- Facts about the service that every process sharing the database must agree on: a check value
-- of the master key (so a process started with another key refuses to start instead of failing
-- to decrypt every secret), and the SSRF settings `serve` last started with.
CREATE TABLE service_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
