-- Online garbage collection (see registryd's service/gc.rs): when each link and manifest was
-- made, so that nothing younger than the grace period is collected, and an index to find which
-- manifests of a repository reference a blob.

-- Times are unix milliseconds. repo_blobs gains linked_at; the table is rebuilt for the
-- default (nothing references it). Existing links count as made now, so the grace period applies to them in full.
CREATE TABLE repo_blobs_new (
    repo_id   INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest    TEXT NOT NULL REFERENCES blobs(digest),
    linked_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    PRIMARY KEY (repo_id, digest)
) STRICT;
INSERT INTO repo_blobs_new (repo_id, digest) SELECT repo_id, digest FROM repo_blobs;
DROP TABLE repo_blobs;
ALTER TABLE repo_blobs_new RENAME TO repo_blobs;
CREATE INDEX repo_blobs_by_digest ON repo_blobs (digest);
-- Linking a blob again (a re-upload, a mount) renews its link: the grace period then counts
-- from the push that needs it. Fires before INSERT OR IGNORE skips the existing row.
CREATE TRIGGER repo_blobs_relinked BEFORE INSERT ON repo_blobs
BEGIN
    UPDATE repo_blobs SET linked_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)
    WHERE repo_id = NEW.repo_id AND digest = NEW.digest;
END;

-- manifests gains pushed_at. Tags and references point at manifests, so the table is not
-- rebuilt: the column is added, filled for existing rows, and set on insert by a trigger.
ALTER TABLE manifests ADD COLUMN pushed_at INTEGER NOT NULL DEFAULT 0;
UPDATE manifests SET pushed_at = CAST(unixepoch('subsec') * 1000 AS INTEGER);
CREATE TRIGGER manifests_pushed_at AFTER INSERT ON manifests
BEGIN
    UPDATE manifests SET pushed_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)
    WHERE rowid = NEW.rowid;
END;

CREATE INDEX manifest_refs_by_target ON manifest_refs (repo_id, target_digest);
CREATE INDEX manifests_by_digest ON manifests (digest);
