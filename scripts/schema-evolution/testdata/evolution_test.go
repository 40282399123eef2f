package repo_test

// The schema-evolution test's checks (scripts/schema-evolution.sh copies
// this file into repo/ of a scratch copy of the repository, after adding
// 00099_evolution.sql to schema/ and evolution.sql to queries/ and
// regenerating). Nothing here was edited for the new schema by hand but the
// queries' calls.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aah/evaldb/cachewrap"
	"github.com/aah/evaldb/gen"
	"github.com/aah/evaldb/internal/dbtest"
	"github.com/aah/evaldb/repo"
	"github.com/aah/evaldb/txn"
)

func evoOpen(t *testing.T, url string, listen bool) *repo.Repo {
	t.Helper()
	r, err := repo.Open(context.Background(), &repo.Config{URL: url, Env: repo.Test, DisableListen: !listen,
		CacheOptions: &cachewrap.Options{TTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func evolutionRun(name string, passed ...bool) txn.Run {
	run := txn.Run{Name: name, Model: "m", Dataset: "d"}
	for i, p := range passed {
		run.Results = append(run.Results, txn.Result{CaseID: string(rune('a' + i)), Passed: p, Score: 1})
	}
	return run
}

// evoEventually polls check until it returns true or 15 s pass: another
// instance learns of a write when its notification arrives.
func evoEventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if check() {
			return
		}
	}
	t.Fatalf("%s: never happened", what)
}

func TestSchemaEvolution(t *testing.T) {
	ctx := context.Background()
	url := dbtest.URL(t)
	a, b := evoOpen(t, url, true), evoOpen(t, url, true)
	// own hears nothing from other processes: what it sees fresh, its own
	// writes invalidated.
	own := evoOpen(t, url, false)
	qa, qb := a.Queries(), b.Queries()
	plain, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)

	// Recording keeps working with the new nullable column, and returns it.
	rec, err := a.RecordEvalRun(ctx, evolutionRun("r1", true, false), nil)
	if err != nil {
		t.Fatalf("RecordEvalRun after adding eval_runs.dataset_id: %v", err)
	}
	if rec.Run.DatasetID != nil {
		t.Errorf("Recorded.Run.DatasetID = %v, want nil", *rec.Run.DatasetID)
	}
	large := evolutionRun("r-copy", make([]bool, 40)...) // the COPY path
	if _, err := a.RecordEvalRun(ctx, large, &txn.Options{CopyThreshold: 10}); err != nil {
		t.Fatalf("RecordEvalRun (COPY) after adding eval_runs.dataset_id: %v", err)
	}

	ds, err := qa.CreateDataset(ctx, "arith")
	if err != nil {
		t.Fatal(err)
	}

	// Own writes: a cached read through a SQL function sees the run moved
	// into the dataset through the same Repo.
	if rate, err := qa.GetDatasetPassRate(ctx, ds.ID); err != nil || rate != 0 {
		t.Fatalf("GetDatasetPassRate() = %v, %v; want 0", rate, err)
	}
	if n, err := qa.SetRunDataset(ctx, gen.SetRunDatasetParams{DatasetID: &ds.ID, ID: rec.Run.ID}); err != nil || n != 1 {
		t.Fatalf("SetRunDataset() = %d, %v", n, err)
	}
	if rate, err := qa.GetDatasetPassRate(ctx, ds.ID); err != nil || rate != 0.5 {
		t.Errorf("GetDatasetPassRate() after an own write = %v, %v; want 0.5 (the function's tables were not invalidated)", rate, err)
	}

	// Another instance: b caches the view, a records a run into the dataset.
	counts := func(q gen.Querier) int64 {
		rows, err := q.GetDatasetRunCounts(ctx)
		if err != nil || len(rows) != 1 {
			t.Fatalf("GetDatasetRunCounts() = %v, %v", rows, err)
		}
		return rows[0].Runs
	}
	if got := counts(qb); got != 1 {
		t.Fatalf("GetDatasetRunCounts() = %d, want 1", got)
	}
	rec2, err := a.RecordEvalRun(ctx, evolutionRun("r2", true), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qa.SetRunDataset(ctx, gen.SetRunDatasetParams{DatasetID: &ds.ID, ID: rec2.Run.ID}); err != nil {
		t.Fatal(err)
	}
	evoEventually(t, "another instance sees a view's base table change", func() bool { return counts(qb) == 2 })

	// Plain SQL: a write by psql to a new table reaches both caches.
	tags := func(q gen.Querier) int {
		ts, err := q.ListDatasetTags(ctx, ds.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	if n, err := qa.TagDatasets(ctx, []gen.TagDatasetsParams{{DatasetID: ds.ID, Tag: "math"}}); err != nil || n != 1 {
		t.Fatalf("TagDatasets() = %d, %v", n, err)
	}
	if tags(qa) != 1 || tags(qb) != 1 {
		t.Fatalf("ListDatasetTags() after :copyfrom: want 1 tag")
	}
	if _, err := plain.Exec(ctx, `INSERT INTO dataset_tags (dataset_id, tag) VALUES ($1, 'easy')`, ds.ID); err != nil {
		t.Fatal(err)
	}
	evoEventually(t, "instance a sees a plain-SQL write to a new table", func() bool { return tags(qa) == 2 })
	evoEventually(t, "instance b sees a plain-SQL write to a new table", func() bool { return tags(qb) == 2 })

	// :exec: a write, invalidating the tags it removed.
	if err := qa.UntagDataset(ctx, gen.UntagDatasetParams{DatasetID: ds.ID, Tag: "easy"}); err != nil {
		t.Fatal(err)
	}
	if got := tags(qa); got != 1 {
		t.Errorf("ListDatasetTags() after UntagDataset (:exec) = %d tags, want 1", got)
	}

	// A rule's writes invalidate: removing a tag archives it (the rule on
	// dataset_tags), and own, which hears no other instance, sees the
	// archive grow at once.
	archived, err := own.Queries().CountArchivedTags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.Queries().TagDatasets(ctx, []gen.TagDatasetsParams{{DatasetID: ds.ID, Tag: "to-archive"}}); err != nil {
		t.Fatal(err)
	}
	if err := own.Queries().UntagDataset(ctx, gen.UntagDatasetParams{DatasetID: ds.ID, Tag: "to-archive"}); err != nil {
		t.Fatal(err)
	}
	if got, err := own.Queries().CountArchivedTags(ctx); err != nil || got != archived+1 {
		t.Errorf("CountArchivedTags() after a delete the rule archives = %d, %v; want %d (the rule's table was not invalidated)", got, err, archived+1)
	}
	// Row-level security: the read is never cached; a plain-SQL write is
	// seen by the next read at once.
	if _, _, cached, ok := cachewrap.QueryTables("ListDatasetNotes"); !ok || cached {
		t.Errorf("QueryTables(ListDatasetNotes) cached = %v (%v), want a read of a table with row-level security never cached", cached, ok)
	}
	if _, err := qa.ListDatasetNotes(ctx, ds.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Exec(ctx, `INSERT INTO dataset_notes (dataset_id, body) VALUES ($1, 'hard')`, ds.ID); err != nil {
		t.Fatal(err)
	}
	if notes, err := qa.ListDatasetNotes(ctx, ds.ID); err != nil || len(notes) != 1 {
		t.Errorf("ListDatasetNotes() after a plain-SQL insert = %v, %v; want 1 note at once", notes, err)
	}

	// A trigger's writes invalidate: the cached audit count changes after a
	// rename (datasets' trigger writes dataset_audit), in this instance at once.
	before, err := qa.CountDatasetAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tag, err := qa.RenameDataset(ctx, gen.RenameDatasetParams{Name: "arithmetic", ID: ds.ID}); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("RenameDataset() = %v, %v", tag, err)
	}
	if after, err := qa.CountDatasetAudit(ctx); err != nil || after != before+1 {
		t.Errorf("CountDatasetAudit() after a rename = %d, %v; want %d (the trigger's table was not invalidated)", after, err, before+1)
	}

	// Recording a run invalidates what the trigger on eval_runs writes.
	audits, err := own.Queries().CountDatasetAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.RecordEvalRun(ctx, evolutionRun("r3", true), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := own.Queries().CountDatasetAudit(ctx); err != nil || got != audits+1 {
		t.Errorf("CountDatasetAudit() after RecordEvalRun = %d, %v; want %d (RecordEvalRun did not invalidate its trigger's table)", got, err, audits+1)
	}

	// nextval is a write: never read-only, never cached.
	if cachewrap.ReadOnly("NextAuditID") {
		t.Error("ReadOnly(NextAuditID) = true: a replica would refuse nextval")
	}
	id1, err := qa.NextAuditID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id2, err := qa.NextAuditID(ctx); err != nil || id2 == id1 {
		t.Errorf("NextAuditID() twice = %d, %d (%v): a cached nextval", id1, id2, err)
	}
	if !cachewrap.ReadOnly("GetDatasetRunCounts") {
		t.Error("ReadOnly(GetDatasetRunCounts) = false for a read of a view")
	}

	evolutionBatches(t, ds, a, b, own, plain)
}

// evolutionBatches checks the new tables' batch queries (:batchexec,
// :batchmany, :batchone): results, and coherence of the cached reads of
// what they write (own writes, another instance, a trigger's table) and of
// what they read (plain SQL).
func evolutionBatches(t *testing.T, ds gen.Dataset, a, b, own *repo.Repo, plain *pgx.Conn) {
	ctx := context.Background()
	tags := func(q gen.Querier) int {
		ts, err := q.ListDatasetTags(ctx, ds.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	before := tags(own.Queries())
	if tags(b.Queries()) != before {
		t.Fatal("instances disagree on the tags")
	}
	exec := func(what string, res interface {
		Exec(func(int, error))
		Close() error
	}) {
		t.Helper()
		res.Exec(func(i int, err error) {
			if err != nil {
				t.Errorf("%s[%d]: %v", what, i, err)
			}
		})
		if err := res.Close(); err != nil {
			t.Errorf("%s: Close = %v", what, err)
		}
	}

	// Own writes: the instance that hears nothing sees its batch's tags.
	exec("TagDatasetsBatch", own.Queries().TagDatasetsBatch(ctx, []gen.TagDatasetsBatchParams{
		{DatasetID: ds.ID, Tag: "batch-1"}, {DatasetID: ds.ID, Tag: "batch-2"}}))
	if got := tags(own.Queries()); got != before+2 {
		t.Errorf("ListDatasetTags() after an own :batchexec = %d, want %d", got, before+2)
	}
	// Another instance.
	evoEventually(t, "another instance sees a batch's write", func() bool { return tags(b.Queries()) == before+2 })

	// A failed statement reaches its callback, and the batch is atomic.
	res := a.Queries().TagDatasetsBatch(ctx, []gen.TagDatasetsBatchParams{{DatasetID: ds.ID, Tag: "batch-3"}, {DatasetID: ds.ID, Tag: "batch-1"}})
	var errs []error
	res.Exec(func(_ int, err error) { errs = append(errs, err) })
	var ce *repo.ConflictError
	if len(errs) != 2 || errs[0] != nil || !errors.As(errs[1], &ce) || !errors.As(res.Close(), &ce) {
		t.Errorf("TagDatasetsBatch with a duplicate: callbacks %v, want nil and a *repo.ConflictError (and Close the conflict)", errs)
	}
	if got := tags(a.Queries()); got != before+2 {
		t.Errorf("ListDatasetTags() after a failed batch = %d, want %d (nothing of it)", got, before+2)
	}

	// A batch whose rows' trigger writes another table invalidates it.
	audits, err := own.Queries().CountDatasetAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exec("RenameDatasets", own.Queries().RenameDatasets(ctx, []gen.RenameDatasetsParams{{Name: "arith-2", ID: ds.ID}}))
	if got, err := own.Queries().CountDatasetAudit(ctx); err != nil || got != audits+1 {
		t.Errorf("CountDatasetAudit() after RenameDatasets = %d, %v; want %d (the trigger's table was not invalidated)", got, err, audits+1)
	}

	// :batchone and :batchmany, with a plain-SQL write just before: never
	// cached, they see it at once.
	if _, err := plain.Exec(ctx, `INSERT INTO dataset_tags (dataset_id, tag) VALUES ($1, 'plain')`, ds.ID); err != nil {
		t.Fatal(err)
	}
	var names []string
	var missing error
	a.Queries().GetDatasets(ctx, []int64{ds.ID, -1}).QueryRow(func(i int, d gen.Dataset, err error) {
		if i == 0 && err == nil {
			names = append(names, d.Name)
		}
		if i == 1 {
			missing = err
		}
	})
	if len(names) != 1 || names[0] != "arith-2" || !errors.Is(missing, repo.ErrNotFound) {
		t.Errorf("GetDatasets() = %v, %v; want [arith-2] and ErrNotFound", names, missing)
	}
	var n int
	b.Queries().ListDatasetTagsOf(ctx, []int64{ds.ID}).Query(func(_ int, ts []string, err error) {
		if err != nil {
			t.Error(err)
		}
		n = len(ts)
	})
	if n != before+3 {
		t.Errorf("ListDatasetTagsOf() = %d tags, want %d", n, before+3)
	}
	for _, r := range []*repo.Repo{a, b, own} {
		if s := r.PoolStats(); s.AcquiredConns != 0 {
			t.Errorf("%d connections still acquired after the batches", s.AcquiredConns)
		}
	}
}
