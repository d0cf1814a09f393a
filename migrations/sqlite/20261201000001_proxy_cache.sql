-- Pull-through cache (registryd's service/proxy): the tags that came from an upstream, and when
-- each was last checked there. A cached tag older than its upstream's ttl is revalidated before
-- it is served; a pushed tag (no row here) never is. A push to the tag removes its row.
CREATE TABLE cached_tags (
    repo_id    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, name) REFERENCES tags (repo_id, name) ON DELETE CASCADE
) STRICT;

-- Manifests fetched from an upstream (cached = 1), and when each was last pulled: above
-- proxy.maxsize the least recently pulled cached images are evicted. Pushed manifests (0) never
-- are.
ALTER TABLE manifests ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE manifests ADD COLUMN used_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX manifests_cached_by_use ON manifests (used_at) WHERE cached = 1;
