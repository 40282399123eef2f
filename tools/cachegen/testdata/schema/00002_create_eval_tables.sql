-- +goose Up

-- eval_runs is one evaluation of a model on a dataset. The id is a UUID the
-- client generates (UUIDv7 by default) and doubles as the idempotency key of
-- txn.RecordEvalRun. A run is finished exactly when its status is not
-- 'running'.
CREATE TABLE eval_runs (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (name <> ''),
    model       text        NOT NULL CHECK (model <> ''),
    dataset     text        NOT NULL CHECK (dataset <> ''),
    status      text        NOT NULL DEFAULT 'running'
        CONSTRAINT eval_runs_status_check CHECK (status IN ('running', 'completed', 'failed')),
    config      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT eval_runs_finished_matches_status CHECK ((status = 'running') = (finished_at IS NULL)),
    CONSTRAINT eval_runs_finished_after_started CHECK (finished_at >= started_at)
);
-- Serves ListEvalRuns: newest first, keyset-paginated on (created_at, id).
CREATE INDEX eval_runs_created_at_id_idx ON eval_runs (created_at DESC, id DESC);

-- eval_results holds one row per test case of a run. The primary key
-- (run_id, case_id) makes case ids unique within a run and serves every read
-- of a run's results, in case_id order, so the table needs no other index.
CREATE TABLE eval_results (
    run_id            uuid             NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
    case_id           text             NOT NULL CHECK (case_id <> ''),
    input             text             NOT NULL,
    expected          text             NOT NULL,
    output            text             NOT NULL,
    score             double precision NOT NULL
        CHECK (score NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)),
    passed            boolean          NOT NULL,
    latency_ms        integer          NOT NULL CHECK (latency_ms >= 0),
    prompt_tokens     integer          NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens integer          NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    error             text,
    CONSTRAINT eval_results_pkey PRIMARY KEY (run_id, case_id)
);

-- eval_metrics holds a run's summary numbers: one value per metric name.
CREATE TABLE eval_metrics (
    run_id uuid             NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
    name   text             NOT NULL CHECK (name <> ''),
    value  double precision NOT NULL
        CHECK (value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)),
    CONSTRAINT eval_metrics_pkey PRIMARY KEY (run_id, name)
);

-- +goose Down
DROP TABLE eval_metrics;
DROP TABLE eval_results;
DROP TABLE eval_runs;
