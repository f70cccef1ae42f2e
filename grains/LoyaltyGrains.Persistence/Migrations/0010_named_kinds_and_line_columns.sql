-- Two things SQL used to read from accidents, named instead (docs/DATA.md, "Kinds and breakdown columns").
--
-- 1. Entry kinds by name. loyalty.entry_kinds lists every kind of EntryKind (C#), and loyalty.kind('Capture') gives its
--    number: immutable, so in a query it is folded to the constant at planning and partial indexes keyed on a kind
--    still match. Rendered by EntryKindsSql.Render() from the C# enum; a test checks the database agrees with it.
CREATE TABLE loyalty.entry_kinds
(
    kind smallint NOT NULL,
    name text     NOT NULL,
    CONSTRAINT entry_kinds_pk PRIMARY KEY (kind),
    CONSTRAINT entry_kinds_name UNIQUE (name)
);

INSERT INTO loyalty.entry_kinds (kind, name) VALUES
    (1, 'Enroll'),
    (2, 'Authorize'),
    (3, 'Capture'),
    (4, 'ForcePost'),
    (5, 'Reverse'),
    (6, 'ReverseParked'),
    (7, 'ReverseApplied'),
    (8, 'Refund'),
    (9, 'ExpirePending'),
    (10, 'ChooseCategories'),
    (11, 'Redeem'),
    (12, 'RedeemRefund'),
    (13, 'AuthorizeLate'),
    (14, 'TierAssigned'),
    (15, 'ActivateCampaign'),
    (16, 'ExpireLots'),
    (17, 'ReferralBonus'),
    (18, 'ParkedReversalExpired')
ON CONFLICT (kind) DO UPDATE SET name = excluded.name;

CREATE OR REPLACE FUNCTION loyalty.kind(p_name text) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS
$$
BEGIN
    CASE p_name
        WHEN 'Enroll' THEN RETURN 1;
        WHEN 'Authorize' THEN RETURN 2;
        WHEN 'Capture' THEN RETURN 3;
        WHEN 'ForcePost' THEN RETURN 4;
        WHEN 'Reverse' THEN RETURN 5;
        WHEN 'ReverseParked' THEN RETURN 6;
        WHEN 'ReverseApplied' THEN RETURN 7;
        WHEN 'Refund' THEN RETURN 8;
        WHEN 'ExpirePending' THEN RETURN 9;
        WHEN 'ChooseCategories' THEN RETURN 10;
        WHEN 'Redeem' THEN RETURN 11;
        WHEN 'RedeemRefund' THEN RETURN 12;
        WHEN 'AuthorizeLate' THEN RETURN 13;
        WHEN 'TierAssigned' THEN RETURN 14;
        WHEN 'ActivateCampaign' THEN RETURN 15;
        WHEN 'ExpireLots' THEN RETURN 16;
        WHEN 'ReferralBonus' THEN RETURN 17;
        WHEN 'ParkedReversalExpired' THEN RETURN 18;
        ELSE RAISE EXCEPTION 'loyalty.kind: no entry kind is named %', p_name;
    END CASE;
END
$$;

-- 2. What SQL needs of a breakdown, in columns: whether a line names a partner, whether a line is a campaign's bonus.
--    The writer sets them from the lines (LedgerColumns); queries never match the JSON text (its key order and spacing
--    are the encoder's business). Added with DEFAULT false (no table rewrite: existing rows read false), then only the
--    rows that have such a line are updated, found with jsonb. The default is dropped afterwards, so a row written by
--    an engine older than this migration (a silo not yet upgraded in a rolling upgrade) is NULL, never a wrong false:
--    queries read NULL as "look at the breakdown" (the two functions below).
CREATE FUNCTION loyalty.breakdown_has_partner_line(p_breakdown text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT p_breakdown::jsonb @? '$[*] ? (@.partnerId != "")' $$;

CREATE FUNCTION loyalty.breakdown_has_campaign_line(p_breakdown text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT p_breakdown::jsonb @? '$[*] ? (@.rule starts with "campaign:")' $$;

ALTER TABLE loyalty.ledger
    ADD COLUMN has_partner_line boolean DEFAULT false,
    ADD COLUMN has_campaign_line boolean DEFAULT false;

UPDATE loyalty.ledger
   SET has_partner_line = loyalty.breakdown_has_partner_line(breakdown),
       has_campaign_line = loyalty.breakdown_has_campaign_line(breakdown)
 WHERE breakdown <> '[]'
   AND (loyalty.breakdown_has_partner_line(breakdown) OR loyalty.breakdown_has_campaign_line(breakdown));

ALTER TABLE loyalty.ledger
    ALTER COLUMN has_partner_line DROP DEFAULT,
    ALTER COLUMN has_campaign_line DROP DEFAULT;

-- The ledger's side of settlement, as in 0007, on the kinds' names and the partner column instead of a text match.
CREATE OR REPLACE FUNCTION loyalty.partner_ledger_lines(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (partner_id text, day date, accrued_minor bigint, clawed_back_minor bigint, redeemed_minor bigint, events bigint)
LANGUAGE sql STABLE AS
$$
    WITH lines AS (
        SELECT l.member_id, l.sequence, l.kind, (l.recorded_at AT TIME ZONE 'UTC')::date AS day,
               line->>'partnerId' AS partner_id, (line->>'amountMinor')::bigint AS amount
          FROM loyalty.ledger l
         CROSS JOIN LATERAL jsonb_array_elements(l.breakdown::jsonb) AS line
         WHERE l.kind IN (loyalty.kind('Capture'), loyalty.kind('ForcePost'), loyalty.kind('Refund'),
                          loyalty.kind('Redeem'), loyalty.kind('RedeemRefund'))
           AND l.recorded_at >= p_from AND l.recorded_at < p_to
           AND coalesce(l.has_partner_line, loyalty.breakdown_has_partner_line(l.breakdown))
           AND line->>'partnerId' <> '' AND (line->>'amountMinor')::bigint <> 0)
    SELECT partner_id, day,
           coalesce(sum(amount) FILTER (WHERE kind IN (loyalty.kind('Capture'), loyalty.kind('ForcePost'))), 0)::bigint,
           coalesce(-sum(amount) FILTER (WHERE kind = loyalty.kind('Refund')), 0)::bigint,
           coalesce(-sum(amount) FILTER (WHERE kind IN (loyalty.kind('Redeem'), loyalty.kind('RedeemRefund'))), 0)::bigint,
           count(DISTINCT (member_id, sequence))
      FROM lines
     GROUP BY partner_id, day;
$$;

-- Analytics views of 0008 on the kinds' names; purchase_cashback_v also gives the breakdown columns (NULL resolved).
CREATE OR REPLACE VIEW loyalty.member_month_tiers_v AS
    SELECT DISTINCT ON (member_id, purchase_month) member_id, purchase_month, tier_id
      FROM (SELECT member_id, purchase_month, detail AS tier_id, sequence
              FROM loyalty.ledger WHERE kind = loyalty.kind('TierAssigned')
            UNION ALL
            SELECT member_id, purchase_month, split_part(detail, '|', 1), sequence
              FROM loyalty.ledger WHERE kind = loyalty.kind('Enroll') AND purchase_month <> 0) t
     ORDER BY member_id, purchase_month, sequence;

CREATE OR REPLACE VIEW loyalty.purchase_cashback_v AS
    SELECT l.member_id, l.sequence, l.kind, l.recorded_at, l.purchase_month, l.category, l.mcc,
           l.spend_delta_minor AS spend_minor, l.available_delta_minor AS cashback_minor,
           coalesce(t.tier_id, '') AS tier_id, l.breakdown,
           coalesce(l.has_partner_line, loyalty.breakdown_has_partner_line(l.breakdown)) AS has_partner_line,
           coalesce(l.has_campaign_line, loyalty.breakdown_has_campaign_line(l.breakdown)) AS has_campaign_line
      FROM loyalty.ledger l
      LEFT JOIN loyalty.member_month_tiers_v t ON t.member_id = l.member_id AND t.purchase_month = l.purchase_month
     WHERE l.kind IN (loyalty.kind('Capture'), loyalty.kind('ForcePost'), loyalty.kind('Refund'));
