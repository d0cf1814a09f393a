-- Small blobs inline: the bytes of a blob at most `storage.inline.maxsize` long (configs, tiny
-- layers, manifests, signatures) live here instead of one file or object each, written in the
-- transaction that records the blob and deleted with its row.
CREATE TABLE blob_bytes (
    digest TEXT COLLATE "C" PRIMARY KEY REFERENCES blobs(digest) ON DELETE CASCADE,
    bytes  BYTEA NOT NULL
);
