-- notify-devino service store, PostgreSQL engine: the first schema (the SQLite engine's, with
-- PostgreSQL's types: times are timestamptz, JSON is jsonb).

CREATE TABLE notifications (
    id          text PRIMARY KEY,
    text        text NOT NULL,
    request     jsonb NOT NULL,         -- the request as accepted
    route       text,
    created_at  timestamptz NOT NULL
);

CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  text NOT NULL REFERENCES notifications (id),
    channel          text NOT NULL,
    address          text NOT NULL,
    contact          text,
    step             integer NOT NULL DEFAULT 0,
    state            text NOT NULL,
    due_at           timestamptz,       -- when a worker should next look at it; NULL: never
    group_key        text NOT NULL,
    payload          jsonb NOT NULL,    -- what the sender needs
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    message_ids      jsonb NOT NULL DEFAULT '[]',
    provider_state   text,
    error            text,
    lease_owner      text,
    lease_expires_at timestamptz,
    accepted_at      timestamptz,
    fallback_at      timestamptz,
    final_at         timestamptz
);
-- What claim and next_due read: due rows of one state, earliest first.
CREATE INDEX deliveries_due ON deliveries (state, due_at, id) WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_notification ON deliveries (notification_id);
-- What recover reads: leased rows.
CREATE INDEX deliveries_leased ON deliveries (lease_expires_at) WHERE lease_owner IS NOT NULL;
-- What the outbox depth (max_active) counts.
CREATE INDEX deliveries_active ON deliveries (state) WHERE state IN ('queued', 'claimed', 'sending');

CREATE TABLE transitions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES deliveries (id),
    from_state   text,
    to_state     text NOT NULL,
    at           timestamptz NOT NULL,
    detail       text
);
CREATE INDEX transitions_delivery ON transitions (delivery_id);

CREATE TABLE submit_keys (
    scope            text NOT NULL,
    key              text NOT NULL,
    request_hash     text,
    notification_id  text NOT NULL,
    response         jsonb,             -- the first response
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX submit_keys_expiry ON submit_keys (expires_at);

CREATE TABLE inbox (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel      text NOT NULL,
    sender       text NOT NULL,
    recipient    text NOT NULL,
    text         text NOT NULL,
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL
);
-- Each message once (md5: a long text would not fit a btree entry).
CREATE UNIQUE INDEX inbox_once ON inbox (channel, sender, recipient, received_at, md5(text));

CREATE TABLE inbox_positions (
    channel   text PRIMARY KEY,
    position  timestamptz NOT NULL
);

CREATE TABLE writable_check (
    id  integer PRIMARY KEY CHECK (id = 1),
    at  timestamptz NOT NULL
);

-- Singletons (the inbox reader of a channel): one holder at a time, until its lease expires.
CREATE TABLE leaders (
    name        text PRIMARY KEY,
    owner       text NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- The provider accounts' request slots, shared by every instance (see RateSlots in postgres.py):
-- a slot counts from granted_at until `window` after ended_at, or, while the request is under
-- way (ended_at NULL), until its lease expires (its holder died).
CREATE TABLE rate_slots (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account           text NOT NULL,
    owner             text NOT NULL,
    granted_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    lease_expires_at  timestamptz NOT NULL
);
CREATE INDEX rate_slots_account ON rate_slots (account);
