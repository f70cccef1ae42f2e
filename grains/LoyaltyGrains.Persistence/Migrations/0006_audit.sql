-- Who did what, when: every Admin call and every Redeem (refused ones too), written by the gateway in batches
-- (docs/OPERATIONS.md, "Security"). Append-only: the engine never updates or deletes a row.
CREATE TABLE loyalty.audit
(
    id             bigint      GENERATED ALWAYS AS IDENTITY,
    at             timestamptz NOT NULL,
    subject        text        NOT NULL, -- the token's sub (an app's member, a partner's till, an operator)
    roles          text        NOT NULL, -- the token's roles, comma-separated
    method         text        NOT NULL, -- e.g. Admin/BlockCard, Balances/Redeem
    outcome        text        NOT NULL, -- the gRPC status the caller got: OK, PERMISSION_DENIED, FAILED_PRECONDITION, ...
    member_id      text        NOT NULL,
    card_id        text        NOT NULL,
    partner_id     text        NOT NULL,
    campaign_id    text        NOT NULL,
    transaction_id text        NOT NULL,
    amount_minor   bigint,
    detail         text        NOT NULL,
    peer           text        NOT NULL, -- the caller's address as the gateway saw it
    node           text        NOT NULL, -- the gateway host that served the call
    CONSTRAINT audit_pk PRIMARY KEY (id)
);

CREATE INDEX audit_at ON loyalty.audit (at);
CREATE INDEX audit_subject ON loyalty.audit (subject, at);
CREATE INDEX audit_member ON loyalty.audit (member_id, at) WHERE member_id <> '';
CREATE INDEX audit_card ON loyalty.audit (card_id, at) WHERE card_id <> '';

CREATE FUNCTION loyalty.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'loyalty.audit is append-only (% refused)', TG_OP;
END
$$;

CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON loyalty.audit
    FOR EACH ROW EXECUTE FUNCTION loyalty.audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON loyalty.audit
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.audit_append_only();

-- What operators query (order as needed), e.g.
--   SELECT * FROM loyalty.audit_log_v WHERE card_id = 'card-1' ORDER BY at DESC;
--   SELECT * FROM loyalty.audit_log_v WHERE outcome <> 'OK' AND at > now() - interval '1 day';
CREATE VIEW loyalty.audit_log_v AS
SELECT a.at,
       a.subject,
       a.roles,
       a.method,
       a.outcome,
       a.outcome = 'OK' AS succeeded,
       a.member_id,
       a.card_id,
       a.partner_id,
       a.campaign_id,
       a.transaction_id,
       a.amount_minor,
       a.detail,
       a.peer,
       a.node,
       a.id
  FROM loyalty.audit a;
