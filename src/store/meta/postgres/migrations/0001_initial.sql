-- semdock schema 1: what redb's tables hold, with typed keys. Names sort by their bytes
-- (COLLATE "C"), as in redb; records are the same postcard encoding as there.
CREATE TABLE feeds (name text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE repositories (name text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE manifests (
    repo text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (repo, digest));
-- One row per tag; rank orders versions by SemVer precedence, then other tags by name
-- (store/meta/precedence.rs), so the virtual tags are the last row of a rank range.
CREATE TABLE tags (
    repo text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    rank bytea NOT NULL,
    PRIMARY KEY (repo, tag));
CREATE UNIQUE INDEX tags_by_rank ON tags (repo, rank);
CREATE INDEX tags_by_digest ON tags (repo, digest, tag);
CREATE TABLE blobs (digest text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE links (
    repo text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (repo, digest));
CREATE INDEX links_by_digest ON links (digest, repo);
CREATE TABLE referrers (
    repo text COLLATE "C" NOT NULL,
    subject text COLLATE "C" NOT NULL,
    referrer text COLLATE "C" NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (repo, subject, referrer));
CREATE TABLE uploads (id text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE users (name text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE api_keys (id text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE grants (
    principal text COLLATE "C" NOT NULL,
    feed text COLLATE "C" NOT NULL,
    role text NOT NULL,
    PRIMARY KEY (principal, feed));
CREATE INDEX grants_by_feed ON grants (feed, principal);
CREATE TABLE settings (name text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE tombstones (
    repo text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    PRIMARY KEY (repo, tag));
CREATE TABLE history (
    seq bigint PRIMARY KEY,
    repo text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    record bytea NOT NULL);
CREATE INDEX history_by_tag ON history (repo, tag, seq);
CREATE INDEX history_by_repository ON history (repo, seq);
CREATE TABLE audit (seq bigint PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE retention (feed text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE pulls (
    repo text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    at bigint NOT NULL,
    PRIMARY KEY (repo, digest));
CREATE TABLE promotions (seq bigint PRIMARY KEY, record bytea NOT NULL);
