-- Open311 intake's rate limit, shared by every API worker: one token bucket per client address
-- (tokens left and when they were counted), taken with one INSERT ... ON CONFLICT DO UPDATE.
-- Rows of clients not seen for longer than a full refill are deleted by the API as it goes.
CREATE TABLE open311_rate (
    client   text PRIMARY KEY,
    tokens   double precision NOT NULL,
    at       timestamptz NOT NULL,
    allowed  boolean NOT NULL
);
CREATE INDEX open311_rate_at ON open311_rate (at);
GRANT SELECT, INSERT, UPDATE, DELETE ON open311_rate TO luciole_api;
