-- The audit log by kind: a filtered read (a feed's settings changes, webhooks' events) walks
-- only the entries of its kinds. Entries written before this migration were feed settings
-- changes and retention rules only (codec.rs reads their first version the same way).
ALTER TABLE audit ADD COLUMN kind text COLLATE "C";
UPDATE audit SET kind = CASE
    WHEN position(convert_to('retention rules', 'UTF8') IN record) > 0 THEN 'retention-rules'
    ELSE 'feed-settings-changed'
END;
ALTER TABLE audit ALTER COLUMN kind SET NOT NULL;
CREATE INDEX audit_by_kind ON audit (kind, seq);
