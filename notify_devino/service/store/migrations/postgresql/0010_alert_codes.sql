-- The Alertmanager receiver's acknowledgement codes (notify_devino.alertmanager.acks) and the
-- read positions of readers other than the inbox's own (the ack reader's): the SQLite
-- engine's 0010, in PostgreSQL's types.

CREATE TABLE alert_codes (
    seq         bigint GENERATED ALWAYS AS IDENTITY,   -- the order rows were made in
    alert_key   text NOT NULL,
    address     text NOT NULL,
    code        text NOT NULL,
    contact     text,
    labels      jsonb NOT NULL,         -- what a silence matches on
    opened_at   timestamptz NOT NULL,
    acked_at    timestamptz,
    acked_by    text,
    silence_id  text,
    closed_at   timestamptz,
    PRIMARY KEY (alert_key, address)
);
-- A code is unique among the open alerts of one address.
CREATE UNIQUE INDEX alert_codes_open ON alert_codes (address, code) WHERE closed_at IS NULL;

CREATE TABLE cursors (
    name   text PRIMARY KEY,
    value  bigint NOT NULL
);
