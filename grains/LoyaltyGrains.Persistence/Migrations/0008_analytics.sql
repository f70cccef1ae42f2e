-- Programme analytics (docs/ANALYTICS.md): the few ledger look-ups the figures need that the ledger's own indexes do
-- not serve. Both indexes are partial and tiny: one row per member (enrolment) and one per member and month (tier),
-- so the hot insert path pays nothing for the other 99% of rows.

-- Cohorts: every member's enrolment time, without reading the member's other rows.
CREATE INDEX ledger_enrolments ON loyalty.ledger (recorded_at) INCLUDE (member_id) WHERE kind = 1;

-- The tier a member had in a programme month, for figures by tier.
CREATE INDEX ledger_month_tiers ON loyalty.ledger (member_id, purchase_month) INCLUDE (detail) WHERE kind = 14;

-- The tier of each member and programme month: frozen by the month's first event (kind 14), or given at enrolment
-- (kind 1 with a month; its detail is "tier|premium|referrer").
CREATE VIEW loyalty.member_month_tiers_v AS
    SELECT DISTINCT ON (member_id, purchase_month) member_id, purchase_month, tier_id
      FROM (SELECT member_id, purchase_month, detail AS tier_id, sequence
              FROM loyalty.ledger WHERE kind = 14
            UNION ALL
            SELECT member_id, purchase_month, split_part(detail, '|', 1), sequence
              FROM loyalty.ledger WHERE kind = 1 AND purchase_month <> 0) t
     ORDER BY member_id, purchase_month, sequence;

-- Money that moves a purchase's cashback: captures and force posts (accrual), refunds (clawback), with the member's
-- tier of the purchase month. spend is the captured amount (negative for a refund), cashback the available change.
CREATE VIEW loyalty.purchase_cashback_v AS
    SELECT l.member_id, l.sequence, l.kind, l.recorded_at, l.purchase_month, l.category, l.mcc,
           l.spend_delta_minor AS spend_minor, l.available_delta_minor AS cashback_minor,
           coalesce(t.tier_id, '') AS tier_id, l.breakdown
      FROM loyalty.ledger l
      LEFT JOIN loyalty.member_month_tiers_v t ON t.member_id = l.member_id AND t.purchase_month = l.purchase_month
     WHERE l.kind IN (3, 4, 8);
