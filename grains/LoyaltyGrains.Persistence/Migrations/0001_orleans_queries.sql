-- The table the Orleans ADO.NET providers read their SQL from: one row per operation key. The texts below (and in
-- 0002-0004) are ours, written to the parameter and column contract of the 10.4.2 providers.
CREATE TABLE orleansquery
(
    querykey  varchar(64)   NOT NULL,
    querytext varchar(8000) NOT NULL,
    CONSTRAINT orleansquery_key PRIMARY KEY (querykey)
);
