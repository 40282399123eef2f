-- A query generation must refuse (a batch is never cached, so a TTL means
-- nothing for it): make generate fails naming it, and a refused generation
-- changes no generated file.
-- cache: ttl=1h
-- name: GetDatasetsCached :batchone
SELECT * FROM datasets WHERE id = @id;
