-- Grain state (Orleans.Persistence.AdoNet 10.4.2): member snapshots, cards, campaigns, program. Unlike the upstream
-- script this table has a unique key, so a state row exists at most once and the first write needs no table lock.
CREATE TABLE orleansstorage
(
    grainidhash            integer       NOT NULL,
    grainidn0              bigint        NOT NULL,
    grainidn1              bigint        NOT NULL,
    graintypehash          integer       NOT NULL,
    graintypestring        varchar(512)  NOT NULL,
    grainidextensionstring varchar(512)  NULL,
    serviceid              varchar(150)  NOT NULL,
    payloadbinary          bytea         NULL,
    modifiedon             timestamptz   NOT NULL DEFAULT now(),
    version                integer       NOT NULL,
    CONSTRAINT uq_orleansstorage UNIQUE NULLS NOT DISTINCT
        (grainidhash, graintypehash, grainidn0, grainidn1, graintypestring, grainidextensionstring, serviceid)
);

-- Optimistic concurrency: a write names the version it read (NULL = never stored). It returns the new version, or
-- the old one when another writer got there first, which Orleans turns into InconsistentStateException. The
-- version is 32-bit (the providers' type); it wraps after 2^31 writes of one grain.
CREATE FUNCTION lg_write_to_storage(
    p_grainidhash integer, p_grainidn0 bigint, p_grainidn1 bigint, p_graintypehash integer, p_graintypestring varchar,
    p_grainidextensionstring varchar, p_serviceid varchar, p_grainstateversion integer, p_payloadbinary bytea)
RETURNS TABLE (newgrainstateversion integer) LANGUAGE plpgsql AS
$$
DECLARE
    changed integer;
BEGIN
    IF p_grainstateversion IS NULL THEN
        INSERT INTO orleansstorage (grainidhash, grainidn0, grainidn1, graintypehash, graintypestring, grainidextensionstring,
                                    serviceid, payloadbinary, version)
        VALUES (p_grainidhash, p_grainidn0, p_grainidn1, p_graintypehash, p_graintypestring, p_grainidextensionstring,
                p_serviceid, p_payloadbinary, 1)
        ON CONFLICT ON CONSTRAINT uq_orleansstorage DO NOTHING;
        GET DIAGNOSTICS changed = ROW_COUNT;
        RETURN QUERY SELECT CASE WHEN changed > 0 THEN 1 ELSE NULL END;
        RETURN;
    END IF;
    UPDATE orleansstorage
       SET payloadbinary = p_payloadbinary, modifiedon = now(),
           version = CASE WHEN version = 2147483647 THEN 1 ELSE version + 1 END
     WHERE grainidhash = p_grainidhash AND graintypehash = p_graintypehash AND grainidn0 = p_grainidn0
       AND grainidn1 = p_grainidn1 AND graintypestring = p_graintypestring
       AND grainidextensionstring IS NOT DISTINCT FROM p_grainidextensionstring
       AND serviceid = p_serviceid AND version = p_grainstateversion;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN QUERY SELECT CASE WHEN changed > 0 THEN (CASE WHEN p_grainstateversion = 2147483647 THEN 1 ELSE p_grainstateversion + 1 END)
                             ELSE p_grainstateversion END;
END
$$;

INSERT INTO orleansquery (querykey, querytext) VALUES
('WriteToStorageKey', '
    SELECT newgrainstateversion FROM lg_write_to_storage(@GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainTypeHash,
        @GrainTypeString, @GrainIdExtensionString, @ServiceId, @GrainStateVersion, @PayloadBinary);'),
('ReadFromStorageKey', '
    SELECT payloadbinary, NULL::xml AS payloadxml, NULL::text AS payloadjson, now() AS modifiedon, version
      FROM orleansstorage
     WHERE grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash AND grainidn0 = @GrainIdN0
       AND grainidn1 = @GrainIdN1 AND graintypestring = @GrainTypeString
       AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString
       AND serviceid = @ServiceId;'),
('ClearStorageKey', '
    UPDATE orleansstorage
       SET payloadbinary = NULL, modifiedon = now(), version = version + 1
     WHERE grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash AND grainidn0 = @GrainIdN0
       AND grainidn1 = @GrainIdN1 AND graintypestring = @GrainTypeString
       AND grainidextensionstring IS NOT DISTINCT FROM @GrainIdExtensionString
       AND serviceid = @ServiceId AND version = @GrainStateVersion
    RETURNING version AS newgrainstateversion;');
