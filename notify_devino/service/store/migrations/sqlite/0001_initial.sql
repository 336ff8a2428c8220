-- notify-devino service store, SQLite engine: the first schema.
-- Times are seconds since the epoch (UTC), as REAL.

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    text        TEXT NOT NULL,
    request     TEXT NOT NULL,          -- JSON: the request as accepted
    route       TEXT,
    created_at  REAL NOT NULL
);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id  TEXT NOT NULL REFERENCES notifications (id),
    channel          TEXT NOT NULL,
    address          TEXT NOT NULL,
    contact          TEXT,
    step             INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL,
    due_at           REAL,              -- when a worker should next look at it; NULL: never
    group_key        TEXT NOT NULL,
    payload          TEXT NOT NULL,     -- JSON: what the sender needs
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    message_ids      TEXT NOT NULL DEFAULT '[]',
    provider_state   TEXT,
    error            TEXT,
    lease_owner      TEXT,
    lease_expires_at REAL,
    accepted_at      REAL,
    fallback_at      REAL,
    final_at         REAL
);
CREATE INDEX deliveries_due ON deliveries (state, due_at);
CREATE INDEX deliveries_notification ON deliveries (notification_id);

CREATE TABLE transitions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries (id),
    from_state   TEXT,
    to_state     TEXT NOT NULL,
    at           REAL NOT NULL,
    detail       TEXT
);
CREATE INDEX transitions_delivery ON transitions (delivery_id);

CREATE TABLE submit_keys (
    scope            TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_hash     TEXT,
    notification_id  TEXT NOT NULL,
    response         TEXT,              -- JSON: the first response
    expires_at       REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX submit_keys_expiry ON submit_keys (expires_at);

CREATE TABLE inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel      TEXT NOT NULL,
    sender       TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    text         TEXT NOT NULL,
    received_at  REAL NOT NULL,
    stored_at    REAL NOT NULL,
    UNIQUE (channel, sender, recipient, received_at, text)
);

CREATE TABLE inbox_positions (
    channel   TEXT PRIMARY KEY,
    position  REAL NOT NULL
);

CREATE TABLE writable_check (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  REAL NOT NULL
);
