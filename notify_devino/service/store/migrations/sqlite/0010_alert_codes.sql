-- The Alertmanager receiver's acknowledgement codes (notify_devino.alertmanager.acks) and the
-- read positions of readers other than the inbox's own (the ack reader's).

CREATE TABLE alert_codes (
    alert_key   TEXT NOT NULL,
    address     TEXT NOT NULL,
    code        TEXT NOT NULL,
    contact     TEXT,
    labels      TEXT NOT NULL,          -- JSON: what a silence matches on
    opened_at   REAL NOT NULL,
    acked_at    REAL,
    acked_by    TEXT,
    silence_id  TEXT,
    closed_at   REAL,
    PRIMARY KEY (alert_key, address)
);
-- A code is unique among the open alerts of one address.
CREATE UNIQUE INDEX alert_codes_open ON alert_codes (address, code) WHERE closed_at IS NULL;

CREATE TABLE cursors (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
