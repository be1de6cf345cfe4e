-- The writer's application database: orders and their outbox. Re-runnable.
-- Outbox rows are published in seq order (commit order, not timestamps:
-- clocks go back).

-- status: ORDERED once placed, PAID once paid, as in the read model
-- (files from before said PLACED: appdb.c rebuilds the table at open).
CREATE TABLE IF NOT EXISTS orders (
    order_id    TEXT PRIMARY KEY NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ORDERED', 'PAID')),
    total       INTEGER NOT NULL,  -- minor unit
    paid_amount INTEGER,           -- minor unit, once paid
    placed_at   TEXT NOT NULL,     -- UTC YYYY-MM-DDTHH:MM:SS.sssZ
    paid_at     TEXT
) WITHOUT ROWID;

-- The relay rewrites an outbox row once, to mark it SENT (or back it off),
-- so the row holds only what that rewrite and the claim need: the
-- envelope, the big column, lives beside it in outbox_payloads and is only
-- read, and leases are one row a claim in outbox_leases.
CREATE TABLE IF NOT EXISTS outbox_messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT, -- commit order
    id              TEXT NOT NULL UNIQUE,  -- the event id (UUIDv7)
    type            TEXT NOT NULL,         -- OrderPlaced / OrderPaid
    aggregate_id    TEXT NOT NULL,         -- the order id: the message key
    occurred_at     TEXT NOT NULL,
    -- Not "status IN (...)": SQLite builds a temporary table of the list
    -- for each row an UPDATE checks, and marking rows SENT is the hot path.
    status          TEXT NOT NULL DEFAULT 'PENDING'
                    CHECK (status = 'PENDING' OR status = 'SENT'
                           OR status = 'DEAD'),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0, -- ms since the epoch
    last_error      TEXT,
    sent_at         TEXT
);

-- The envelope of each outbox row, as published: written with its row in
-- one transaction, deleted with it.
CREATE TABLE IF NOT EXISTS outbox_payloads (
    seq     INTEGER PRIMARY KEY,  -- outbox_messages.seq
    payload TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS outbox_payload_delete
    AFTER DELETE ON outbox_messages
BEGIN
    DELETE FROM outbox_payloads WHERE seq = old.seq;
END;

-- A relay is publishing the rows it claimed, which all lie in
-- [first_seq, last_seq]: other relays skip every row of that range until
-- lease_until (ms since the epoch) or until the claim is marked.
CREATE TABLE IF NOT EXISTS outbox_leases (
    id          INTEGER PRIMARY KEY,
    owner       TEXT NOT NULL,  -- which relay (host:pid by default)
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    lease_until INTEGER NOT NULL
);

-- The relay's "due rows in commit order" and the status counts stay cheap
-- at millions of rows: pending and dead rows are small partial indexes,
-- and SENT rows are counted as the rest.
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox_messages (seq)
    WHERE status = 'PENDING';
CREATE INDEX IF NOT EXISTS outbox_dead ON outbox_messages (seq)
    WHERE status = 'DEAD';
DROP INDEX IF EXISTS outbox_status;
-- "Is an earlier row of this order still pending or dead?": an order has
-- a row or two, read here with their status. A full index, so marking a
-- row SENT (10,000 rows a batch) leaves it alone; a partial one on the
-- status was a random write per row.
DROP INDEX IF EXISTS outbox_open;
CREATE INDEX IF NOT EXISTS outbox_order ON outbox_messages (aggregate_id, seq);
-- No index of SENT rows by age: it cost a write per row marked SENT, and
-- prune walks the table by seq instead, 1,000 seq a transaction.
DROP INDEX IF EXISTS outbox_sent;
