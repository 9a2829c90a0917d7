-- The newest ledger entry of an upload key (what the key last brought) is read from this index:
-- an upload is a replay only when it brings that same content again.
CREATE INDEX ingests_by_key ON ingests (json_extract(record, '$.key'), started_at, id);
