-- +goose Up
-- The schema-evolution test's change (scripts/schema-evolution.sh): what a
-- user's migration typically adds. Not part of evaldb's schema.

CREATE TABLE datasets (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A new nullable column with a foreign-key action: recording must keep
-- working with no code change.
ALTER TABLE eval_runs ADD COLUMN dataset_id bigint REFERENCES datasets (id) ON DELETE SET NULL;

CREATE TABLE dataset_tags (
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    tag        text   NOT NULL,
    PRIMARY KEY (dataset_id, tag)
);

-- Every write to datasets is audited by a trigger: the generator must follow it.
CREATE TABLE dataset_audit (
    id  bigserial PRIMARY KEY,
    op  text NOT NULL,
    at  timestamptz NOT NULL DEFAULT now()
);
-- +goose StatementBegin
CREATE FUNCTION audit_datasets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dataset_audit (op) VALUES (TG_OP);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER datasets_audit AFTER INSERT OR UPDATE OR DELETE ON datasets
    FOR EACH STATEMENT EXECUTE FUNCTION audit_datasets();
-- Recording a run writes dataset_audit too: txn.RecordEvalRun must invalidate it.
CREATE TRIGGER eval_runs_audit AFTER INSERT ON eval_runs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_datasets();

CREATE VIEW dataset_run_counts AS
    SELECT d.id, d.name, count(r.id) AS runs
    FROM datasets d LEFT JOIN eval_runs r ON r.dataset_id = d.id
    GROUP BY d.id, d.name;

-- +goose StatementBegin
CREATE FUNCTION dataset_pass_rate(ds bigint) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT coalesce(avg(CASE WHEN res.passed THEN 1.0 ELSE 0.0 END), 0)::float8
    FROM eval_runs r JOIN eval_results res ON res.run_id = r.id
    WHERE r.dataset_id = ds
$$;
-- +goose StatementEnd

-- A rule: removing a tag archives it. The generator must follow what the
-- rule's action writes, as it follows a trigger.
CREATE TABLE dataset_tag_archive (
    dataset_id bigint      NOT NULL,
    tag        text        NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now()
);
CREATE RULE dataset_tags_archive AS ON DELETE TO dataset_tags DO ALSO
    INSERT INTO dataset_tag_archive (dataset_id, tag) VALUES (OLD.dataset_id, OLD.tag);

-- Row-level security: rows that depend on the session are never cached.
CREATE TABLE dataset_notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    body       text   NOT NULL
);
ALTER TABLE dataset_notes ENABLE ROW LEVEL SECURITY;

-- +goose Down
DROP TABLE dataset_notes;
DROP RULE dataset_tags_archive ON dataset_tags;
DROP TABLE dataset_tag_archive;
DROP FUNCTION dataset_pass_rate(bigint);
DROP VIEW dataset_run_counts;
DROP TRIGGER eval_runs_audit ON eval_runs;
DROP TRIGGER datasets_audit ON datasets;
DROP FUNCTION audit_datasets();
DROP TABLE dataset_audit;
DROP TABLE dataset_tags;
ALTER TABLE eval_runs DROP COLUMN dataset_id;
DROP TABLE datasets;
