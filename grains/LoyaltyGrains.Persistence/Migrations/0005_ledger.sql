-- The ledger: the source of truth and the idempotency record (docs/DATA.md explains why).
CREATE SCHEMA loyalty;

-- Both uniqueness guarantees in one compact, unpartitioned table: a processor's transaction id is used once in
-- the whole system, and a member's sequence is written by one activation only (a second writer collides here).
CREATE TABLE loyalty.ledger_keys
(
    message_id  text        NOT NULL,
    member_id   text        NOT NULL,
    sequence    bigint      NOT NULL,
    recorded_at timestamptz NOT NULL,
    CONSTRAINT ledger_keys_message_id PRIMARY KEY (message_id),
    CONSTRAINT ledger_keys_member_sequence UNIQUE (member_id, sequence)
);

-- One row per accepted message (and per engine-made entry: expiry, tier, referral). Partitioned by the month it
-- was recorded, so old months can be detached and archived whole; the DEFAULT partition means an insert is never
-- refused for want of a partition.
CREATE TABLE loyalty.ledger
(
    member_id                text        NOT NULL,
    sequence                 bigint      NOT NULL,
    message_id               text        NOT NULL,
    kind                     smallint    NOT NULL,
    card_id                  text        NOT NULL,
    purchase_id              text        NOT NULL,
    amount_minor             bigint      NOT NULL,
    pending_delta_minor      bigint      NOT NULL,
    available_delta_minor    bigint      NOT NULL,
    pending_after_minor      bigint      NOT NULL,
    available_after_minor    bigint      NOT NULL,
    breakdown                text        NOT NULL, -- JSON array; text, not jsonb: no parse on the hot insert path (cast ::jsonb to query)
    mcc                      integer     NOT NULL,
    category                 text        NOT NULL,
    merchant_id              text        NOT NULL,
    currency                 text        NOT NULL,
    partner_id               text        NOT NULL,
    occurred_at              timestamptz NOT NULL,
    recorded_at              timestamptz NOT NULL,
    fingerprint              bigint      NOT NULL,
    purchase_month           integer     NOT NULL,
    category_cap_delta_minor bigint      NOT NULL,
    spend_delta_minor        bigint      NOT NULL,
    lot_expires_at           timestamptz NOT NULL,
    detail                   text        NOT NULL,
    CONSTRAINT ledger_pk PRIMARY KEY (member_id, sequence, recorded_at)
) PARTITION BY RANGE (recorded_at);

CREATE TABLE loyalty.ledger_default PARTITION OF loyalty.ledger DEFAULT;

-- Partner statements read a partner's lines by day.
CREATE INDEX ledger_partner ON loyalty.ledger (partner_id, recorded_at) WHERE partner_id <> '';

-- Creates monthly partitions from the month of p_from for p_months months (idempotent). The engine calls it at
-- start-up and daily, always ahead of time, so rows never land in DEFAULT in normal operation.
CREATE FUNCTION loyalty.ensure_ledger_partitions(p_from timestamptz, p_months integer)
RETURNS integer LANGUAGE plpgsql AS
$$
DECLARE
    month_start date := date_trunc('month', p_from AT TIME ZONE 'UTC')::date;
    created integer := 0;
    name text;
BEGIN
    FOR i IN 0 .. p_months - 1 LOOP
        name := format('ledger_%s', to_char(month_start, 'YYYY_MM'));
        IF to_regclass('loyalty.' || name) IS NULL THEN
            EXECUTE format('CREATE TABLE loyalty.%I PARTITION OF loyalty.ledger FOR VALUES FROM (%L) TO (%L)',
                           name, (month_start::timestamp AT TIME ZONE 'UTC'), ((month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        month_start := (month_start + interval '1 month')::date;
    END LOOP;
    RETURN created;
END
$$;

-- The invariant operators and tests run: every member's sequences are 1..n without gaps, and its balances equal the
-- sums of its rows. Returns one row per member that breaks it (none when the ledger is sound).
CREATE FUNCTION loyalty.check_ledger()
RETURNS TABLE (member_id text, problem text) LANGUAGE sql STABLE AS
$$
    WITH totals AS (
        SELECT l.member_id, count(*) AS entries, min(l.sequence) AS first_sequence, max(l.sequence) AS last_sequence,
               sum(l.available_delta_minor) AS available_sum, sum(l.pending_delta_minor) AS pending_sum
          FROM loyalty.ledger l
         GROUP BY l.member_id),
    latest AS (
        SELECT DISTINCT ON (l.member_id) l.member_id, l.available_after_minor, l.pending_after_minor
          FROM loyalty.ledger l
         ORDER BY l.member_id, l.sequence DESC)
    SELECT t.member_id,
           CASE
               WHEN t.first_sequence <> 1 OR t.last_sequence <> t.entries
                   THEN format('sequence gap: %s entries, sequences %s..%s', t.entries, t.first_sequence, t.last_sequence)
               WHEN t.available_sum <> l.available_after_minor
                   THEN format('available %s, but its entries sum to %s', l.available_after_minor, t.available_sum)
               ELSE format('pending %s, but its entries sum to %s', l.pending_after_minor, t.pending_sum)
           END
      FROM totals t
      JOIN latest l ON l.member_id = t.member_id
     WHERE t.first_sequence <> 1 OR t.last_sequence <> t.entries
        OR t.available_sum <> l.available_after_minor OR t.pending_sum <> l.pending_after_minor;
$$;
