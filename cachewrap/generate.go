package cachewrap

// querier_gen.go is generated from sqlc's output in gen/, so it must run
// after the root package's sqlc step; `go generate ./...` visits packages in
// import-path order and github.com/aah/evaldb comes before this package.

//go:generate go run -C ../tools ./cachegen -root ..
