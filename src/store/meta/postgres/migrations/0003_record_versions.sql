-- Every record carries the version of its encoding in its first byte (store/meta/codec.rs):
-- the records written before that were all version 1.
UPDATE feeds SET record = '\x01'::bytea || record;
UPDATE repositories SET record = '\x01'::bytea || record;
UPDATE manifests SET record = '\x01'::bytea || record;
UPDATE blobs SET record = '\x01'::bytea || record;
UPDATE uploads SET record = '\x01'::bytea || record;
UPDATE users SET record = '\x01'::bytea || record;
UPDATE api_keys SET record = '\x01'::bytea || record;
UPDATE history SET record = '\x01'::bytea || record;
UPDATE audit SET record = '\x01'::bytea || record;
UPDATE retention SET record = '\x01'::bytea || record;
UPDATE promotions SET record = '\x01'::bytea || record;
