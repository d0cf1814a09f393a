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
