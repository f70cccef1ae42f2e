-- Partner settlement (docs/SETTLEMENT.md). An entry's partner events are inserted by the same statement as the entry
-- (a CTE of the ledger's batch insert), so an event exists exactly when its ledger row does.

-- Events waiting for delivery. A row is deleted by the same statement that adds it to partner_payouts, so an event is
-- either waiting here or counted there, never both, never neither. The id orders delivery; it is not a commit order.
CREATE TABLE loyalty.partner_outbox
(
    event_id          bigserial   NOT NULL,
    partner_id        text        NOT NULL,
    member_id         text        NOT NULL,
    sequence          bigint      NOT NULL,
    recorded_at       timestamptz NOT NULL,
    accrued_minor     bigint      NOT NULL,
    clawed_back_minor bigint      NOT NULL,
    redeemed_minor    bigint      NOT NULL,
    CONSTRAINT partner_outbox_pk PRIMARY KEY (event_id)
);

-- Each partner's totals per UTC day of the entries' recorded_at.
CREATE TABLE loyalty.partner_payouts
(
    partner_id        text        NOT NULL,
    day               date        NOT NULL,
    accrued_minor     bigint      NOT NULL,
    clawed_back_minor bigint      NOT NULL,
    redeemed_minor    bigint      NOT NULL,
    events            bigint      NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT partner_payouts_pk PRIMARY KEY (partner_id, day)
);

-- The ledger's side of settlement: each partner's lines per UTC day, classified as the engine does (PartnerShares):
-- captures and force posts accrue (kinds 3, 4), refunds claw back (8), redemptions and their refunds are redeemed (11, 12).
-- Pending entries (authorizations, reversals) are not owed. The text filter skips bank-only rows before any JSON parse.
CREATE FUNCTION loyalty.partner_ledger_lines(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (partner_id text, day date, accrued_minor bigint, clawed_back_minor bigint, redeemed_minor bigint, events bigint)
LANGUAGE sql STABLE AS
$$
    WITH lines AS (
        SELECT l.member_id, l.sequence, l.kind, (l.recorded_at AT TIME ZONE 'UTC')::date AS day,
               line->>'partnerId' AS partner_id, (line->>'amountMinor')::bigint AS amount
          FROM loyalty.ledger l
         CROSS JOIN LATERAL jsonb_array_elements(l.breakdown::jsonb) AS line
         WHERE l.kind IN (3, 4, 8, 11, 12)
           AND l.recorded_at >= p_from AND l.recorded_at < p_to
           AND l.breakdown LIKE '%"partnerId":"_%'
           AND line->>'partnerId' <> '' AND (line->>'amountMinor')::bigint <> 0)
    SELECT partner_id, day,
           coalesce(sum(amount) FILTER (WHERE kind IN (3, 4)), 0)::bigint,
           coalesce(-sum(amount) FILTER (WHERE kind = 8), 0)::bigint,
           coalesce(-sum(amount) FILTER (WHERE kind IN (11, 12)), 0)::bigint,
           count(DISTINCT (member_id, sequence))
      FROM lines
     GROUP BY partner_id, day;
$$;

-- The invariant operators and tests run: for every partner and day, payouts equal the sum of that partner's lines in
-- the ledger, exactly. Returns one row per partner and day that differs (none when settlement is complete and sound);
-- the problem says whether undelivered events explain the difference (delivery lag) or not (lost or doubled).
CREATE FUNCTION loyalty.check_payouts()
RETURNS TABLE (partner_id text, day date, problem text) LANGUAGE sql STABLE AS
$$
    WITH ledger AS (
        SELECT * FROM loyalty.partner_ledger_lines('-infinity', 'infinity')),
    pending AS (
        SELECT o.partner_id, (o.recorded_at AT TIME ZONE 'UTC')::date AS day, sum(o.accrued_minor) AS accrued_minor,
               sum(o.clawed_back_minor) AS clawed_back_minor, sum(o.redeemed_minor) AS redeemed_minor, count(*) AS events
          FROM loyalty.partner_outbox o
         GROUP BY 1, 2),
    joined AS (
        SELECT coalesce(l.partner_id, p.partner_id) AS partner_id, coalesce(l.day, p.day) AS day,
               coalesce(l.accrued_minor, 0) AS l_acc, coalesce(l.clawed_back_minor, 0) AS l_claw, coalesce(l.redeemed_minor, 0) AS l_red,
               coalesce(p.accrued_minor, 0) AS p_acc, coalesce(p.clawed_back_minor, 0) AS p_claw, coalesce(p.redeemed_minor, 0) AS p_red,
               coalesce(q.accrued_minor, 0) AS q_acc, coalesce(q.clawed_back_minor, 0) AS q_claw, coalesce(q.redeemed_minor, 0) AS q_red,
               coalesce(q.events, 0) AS q_events
          FROM ledger l
          FULL JOIN loyalty.partner_payouts p ON p.partner_id = l.partner_id AND p.day = l.day
          LEFT JOIN pending q ON q.partner_id = coalesce(l.partner_id, p.partner_id) AND q.day = coalesce(l.day, p.day))
    SELECT j.partner_id, j.day,
           CASE
               WHEN j.p_acc + j.q_acc = j.l_acc AND j.p_claw + j.q_claw = j.l_claw AND j.p_red + j.q_red = j.l_red
                   THEN format('%s events not yet delivered', j.q_events)
               ELSE format('payouts accrued %s, clawed back %s, redeemed %s (+%s undelivered events); the ledger says %s, %s, %s',
                           j.p_acc, j.p_claw, j.p_red, j.q_events, j.l_acc, j.l_claw, j.l_red)
           END
      FROM joined j
     WHERE j.p_acc <> j.l_acc OR j.p_claw <> j.l_claw OR j.p_red <> j.l_red;
$$;
