-- A :batchexec query: the generated facade refuses it with what to write
-- instead, and a refused generation changes no generated file.
-- name: TagDatasetsBatch :batchexec
INSERT INTO dataset_tags (dataset_id, tag) VALUES (@dataset_id, @tag);
