-- +goose Up

-- evaldb_notify_invalidate tells every evaldb instance that a table changed,
-- so that each one's read cache (package cachewrap) drops what it holds of
-- that table. The payload is the table's name. PostgreSQL delivers a
-- notification only when the writing transaction commits (never after a
-- rollback) and sends one per distinct payload per transaction, so a
-- transaction that writes a table many times costs one message. Because the
-- triggers fire for any writer (evaldb, psql, a migration, another
-- service), caches learn of every change, not only of evaldb's own.
-- +goose StatementBegin
CREATE FUNCTION evaldb_notify_invalidate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('evaldb_invalidate', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- One statement-level trigger per cached table: a statement that changes a
-- million rows notifies once. ON DELETE CASCADE deletes in child tables run
-- their own statement triggers, so children are named too.
CREATE TRIGGER users_notify_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION evaldb_notify_invalidate();
CREATE TRIGGER student_profiles_notify_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON student_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION evaldb_notify_invalidate();
CREATE TRIGGER performance_metrics_notify_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON performance_metrics
    FOR EACH STATEMENT EXECUTE FUNCTION evaldb_notify_invalidate();
CREATE TRIGGER eval_runs_notify_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON eval_runs
    FOR EACH STATEMENT EXECUTE FUNCTION evaldb_notify_invalidate();
CREATE TRIGGER eval_results_notify_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON eval_results
    FOR EACH STATEMENT EXECUTE FUNCTION evaldb_notify_invalidate();
CREATE TRIGGER eval_metrics_notify_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON eval_metrics
    FOR EACH STATEMENT EXECUTE FUNCTION evaldb_notify_invalidate();

-- +goose Down
DROP TRIGGER eval_metrics_notify_invalidate ON eval_metrics;
DROP TRIGGER eval_results_notify_invalidate ON eval_results;
DROP TRIGGER eval_runs_notify_invalidate ON eval_runs;
DROP TRIGGER performance_metrics_notify_invalidate ON performance_metrics;
DROP TRIGGER student_profiles_notify_invalidate ON student_profiles;
DROP TRIGGER users_notify_invalidate ON users;
DROP FUNCTION evaldb_notify_invalidate();
