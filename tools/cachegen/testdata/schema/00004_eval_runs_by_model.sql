-- +goose Up

-- GET /runs?model=… (ListEvalRuns with its model filter) pages newest first
-- through one model's runs. On eval_runs_created_at_id_idx alone that walks
-- every newer run of every other model to fill a page: for a model with 0.1 %
-- of the runs, a thousand index entries per row returned. This index makes
-- the filtered page cost what the unfiltered one does.
CREATE INDEX eval_runs_model_created_at_id_idx ON eval_runs (model, created_at, id);

-- +goose Down
DROP INDEX eval_runs_model_created_at_id_idx;
