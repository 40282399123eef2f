-- Workload 1's query (the Go contenders' PK read) for pgbench: the ceiling
-- of workload 5 with read=pk on the same server, SQL and connections.
SELECT id, name, model, dataset, status, config, started_at, finished_at, created_at
FROM eval_runs WHERE id = '01900000-0000-7000-8000-000000000001';
