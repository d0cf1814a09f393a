-- registryd metadata. Blob bytes live on the filesystem (content-addressed); a row only ever
-- points at bytes that were verified, fsynced and renamed into place first.

-- A repository exists once something was pushed to it.
CREATE TABLE repositories (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

-- Every verified blob on disk (layers, configs and manifests alike), stored once.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size   INTEGER NOT NULL
) STRICT;

-- Which repository may serve which blob (a push or a mount links it).
CREATE TABLE repo_blobs (
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest  TEXT NOT NULL REFERENCES blobs(digest),
    PRIMARY KEY (repo_id, digest)
) STRICT;

-- Manifests of a repository; their bytes are the blob of the same digest.
CREATE TABLE manifests (
    repo_id       INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest        TEXT NOT NULL REFERENCES blobs(digest),
    media_type    TEXT NOT NULL,
    size          INTEGER NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    annotations   TEXT,
    PRIMARY KEY (repo_id, digest)
) STRICT;
CREATE INDEX manifests_by_subject ON manifests (repo_id, subject);

-- What a manifest points at: its config and layers, or the children of an index.
CREATE TABLE manifest_refs (
    repo_id         INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    target_digest   TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, target_digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) STRICT;

-- Tags: mutable names for a manifest of the same repository.
CREATE TABLE tags (
    repo_id INTEGER NOT NULL,
    name    TEXT NOT NULL,
    digest  TEXT NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) STRICT;

-- Upload sessions in progress; their bytes are in uploads/<uuid>.
CREATE TABLE uploads (
    uuid       TEXT PRIMARY KEY,
    repo       TEXT NOT NULL,
    started_at INTEGER NOT NULL
) STRICT;
