package cachewrap_test

import (
	"context"
	"fmt"

	"github.com/aah/evaldb/cachewrap"
	"github.com/aah/evaldb/gen"
)

// users stands in for gen.New(pool): it serves GetUser and counts queries.
type users struct {
	gen.Querier
	queries int
}

func (u *users) GetUser(ctx context.Context, id int64) (gen.User, error) {
	u.queries++
	return gen.User{ID: id, Name: fmt.Sprint("Ada #", u.queries)}, nil
}

func (u *users) CreateUser(ctx context.Context, arg gen.CreateUserParams) (gen.User, error) {
	return gen.User{Email: arg.Email, Name: arg.Name}, nil
}

func Example() {
	db := &users{} // in production: gen.New(pool)
	q, err := cachewrap.New(db, nil)
	if err != nil {
		panic(err)
	}
	defer q.Close()
	ctx := context.Background()

	u, _ := q.GetUser(ctx, 1) // miss: runs the query
	q.Wait()                  // tests only: make the cached value visible
	u, _ = q.GetUser(ctx, 1)  // hit
	fmt.Println(u.Name, "queries:", db.queries)

	// A write through the cache invalidates the reads of "users".
	q.CreateUser(ctx, gen.CreateUserParams{Email: "b@example.com", Name: "B"})
	u, _ = q.GetUser(ctx, 1)
	fmt.Println(u.Name, "queries:", db.queries)

	reads, writes, cached, _ := cachewrap.QueryTables("GetStudentWithMetrics")
	fmt.Println(reads, writes, cached)
	s := q.Stats()
	fmt.Println("hits:", s.Hits, "misses:", s.Misses)
	// Output:
	// Ada #1 queries: 1
	// Ada #2 queries: 2
	// [performance_metrics student_profiles] [] true
	// hits: 1 misses: 2
}
