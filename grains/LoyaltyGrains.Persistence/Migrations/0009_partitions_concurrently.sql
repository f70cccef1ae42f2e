-- Several silos start side by side and each creates the ledger's monthly partitions ahead. Checking with to_regclass
-- and then creating raced: two callers both saw no partition and the second CREATE failed (42P07), which stopped that
-- silo's start. Callers now queue on a transaction-scoped advisory lock, and a partition that appeared anyway (a
-- caller without this lock, e.g. an operator's script) counts as done rather than as an error.
CREATE OR REPLACE FUNCTION loyalty.ensure_ledger_partitions(p_from timestamptz, p_months integer)
RETURNS integer LANGUAGE plpgsql AS
$$
DECLARE
    month_start date := date_trunc('month', p_from AT TIME ZONE 'UTC')::date;
    created integer := 0;
    name text;
BEGIN
    -- Key: 'LdgrPart' as bytes; released at the end of the caller's transaction.
    PERFORM pg_advisory_xact_lock(5504638385226084980);
    FOR i IN 0 .. p_months - 1 LOOP
        name := format('ledger_%s', to_char(month_start, 'YYYY_MM'));
        IF to_regclass('loyalty.' || name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE loyalty.%I PARTITION OF loyalty.ledger FOR VALUES FROM (%L) TO (%L)',
                               name, (month_start::timestamp AT TIME ZONE 'UTC'), ((month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
                created := created + 1;
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;
            END;
        END IF;
        month_start := (month_start + interval '1 month')::date;
    END LOOP;
    RETURN created;
END
$$;
