-- The schema-evolution test's queries (scripts/schema-evolution.sh), one
-- or more per sqlc annotation the generated layer supports (:one, :many,
-- :exec, :execrows, :execresult, :copyfrom, :batchexec, :batchmany,
-- :batchone).

-- CreateDataset adds a dataset (:one).
-- name: CreateDataset :one
INSERT INTO datasets (name) VALUES (@name) RETURNING *;

-- GetDatasetRunCounts reads a view: it is cached and invalidated by writes
-- to datasets and eval_runs.
-- cache: ttl=1h
-- name: GetDatasetRunCounts :many
SELECT * FROM dataset_run_counts ORDER BY name;

-- GetDatasetPassRate calls a LANGUAGE sql function of schema/: it reads
-- eval_runs and eval_results.
-- cache: ttl=1h
-- name: GetDatasetPassRate :one
SELECT dataset_pass_rate(@dataset_id)::float8 AS pass_rate;

-- SetRunDataset moves a run to a dataset (:execrows).
-- name: SetRunDataset :execrows
UPDATE eval_runs SET dataset_id = @dataset_id WHERE id = @id;

-- RenameDataset renames a dataset (:execresult); its trigger writes dataset_audit.
-- name: RenameDataset :execresult
UPDATE datasets SET name = @name WHERE id = @id;

-- CountDatasetAudit counts the audit rows the trigger wrote.
-- cache: ttl=1h
-- name: CountDatasetAudit :one
SELECT count(*) FROM dataset_audit;

-- TagDatasets bulk-loads tags (:copyfrom).
-- name: TagDatasets :copyfrom
INSERT INTO dataset_tags (dataset_id, tag) VALUES (@dataset_id, @tag);

-- ListDatasetTags reads tags, cached.
-- cache: ttl=1h
-- name: ListDatasetTags :many
SELECT tag FROM dataset_tags WHERE dataset_id = @dataset_id ORDER BY tag;

-- NextAuditID calls nextval: a write, never sent to a replica.
-- name: NextAuditID :one
SELECT nextval('dataset_audit_id_seq')::bigint AS id;

-- CountArchivedTags reads what the rule on dataset_tags writes.
-- cache: ttl=1h
-- name: CountArchivedTags :one
SELECT count(*) FROM dataset_tag_archive;

-- ListDatasetNotes reads a table with row-level security: never cached.
-- name: ListDatasetNotes :many
SELECT id, body FROM dataset_notes WHERE dataset_id = @dataset_id ORDER BY id;

-- UntagDataset removes a tag (:exec).
-- name: UntagDataset :exec
DELETE FROM dataset_tags WHERE dataset_id = @dataset_id AND tag = @tag;

-- TagDatasetsBatch tags datasets in one round trip (:batchexec): it writes
-- dataset_tags, whose cached reads it invalidates at Close.
-- name: TagDatasetsBatch :batchexec
INSERT INTO dataset_tags (dataset_id, tag) VALUES (@dataset_id, @tag);

-- RenameDatasets renames datasets in one round trip (:batchexec); the
-- trigger on datasets writes dataset_audit, which it invalidates too.
-- name: RenameDatasets :batchexec
UPDATE datasets SET name = @name WHERE id = @id;

-- GetDatasets looks up datasets by id (:batchone); never cached.
-- name: GetDatasets :batchone
SELECT * FROM datasets WHERE id = @id;

-- ListDatasetTagsOf reads the tags of several datasets (:batchmany); never
-- cached.
-- name: ListDatasetTagsOf :batchmany
SELECT tag FROM dataset_tags WHERE dataset_id = @dataset_id ORDER BY tag;
