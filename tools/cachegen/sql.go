package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// schemaInfo is what the generator needs from schema/: the tables and, for
// each table, the tables a DELETE or UPDATE of it also changes through
// foreign keys (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT).
type schemaInfo struct {
	tables   map[string]bool
	onDelete map[string][]string // parent -> children changed by a DELETE of parent
	onUpdate map[string][]string // parent -> children changed by an UPDATE of parent
}

// loadSchema parses the goose Up sections of dir/*.sql.
func loadSchema(dir string) (*schemaInfo, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	si := &schemaInfo{tables: map[string]bool{}, onDelete: map[string][]string{}, onUpdate: map[string][]string{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		up := gooseUp(string(b))
		tree, err := parseJSON(up)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f, err)
		}
		walk(tree, func(key string, n map[string]any) {
			switch key {
			case "CreateStmt":
				child := relName(n["relation"])
				si.tables[child] = true
				// Column constraints and table constraints both hold FKs.
				walk(n["tableElts"], func(k string, c map[string]any) {
					if k == "Constraint" {
						si.addFK(child, c)
					}
				})
			case "AlterTableStmt":
				child := relName(n["relation"])
				walk(n["cmds"], func(k string, c map[string]any) {
					if k == "Constraint" {
						si.addFK(child, c)
					}
				})
			case "DropStmt":
				// Up sections in this repo never drop tables; a dropped table
				// would only make the generator more conservative.
			}
		})
	}
	return si, nil
}

func (si *schemaInfo) addFK(child string, c map[string]any) {
	if c["contype"] != "CONSTR_FOREIGN" {
		return
	}
	parent := relName(c["pktable"])
	// Actions: a = no action, r = restrict, c = cascade, n = set null,
	// d = set default. Every action but a/r changes child rows.
	changes := func(a any) bool { s, _ := a.(string); return s == "c" || s == "n" || s == "d" }
	if changes(c["fk_del_action"]) {
		si.onDelete[parent] = appendUnique(si.onDelete[parent], child)
	}
	if changes(c["fk_upd_action"]) {
		si.onUpdate[parent] = appendUnique(si.onUpdate[parent], child)
	}
}

// gooseUp returns the text between "-- +goose Up" and "-- +goose Down".
func gooseUp(s string) string {
	if i := strings.Index(s, "-- +goose Up"); i >= 0 {
		s = s[i:]
	}
	if i := strings.Index(s, "-- +goose Down"); i >= 0 {
		s = s[:i]
	}
	return s
}

func parseJSON(sql string) (any, error) {
	j, err := pg_query.ParseToJSON(sql)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal([]byte(j), &tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// walk calls fn for every object held under a key of a JSON object
// (pg_query's JSON wraps each node as {"NodeType": {...}}; fields holding a
// single node, such as "relation", are plain objects and are visited too).
func walk(v any, fn func(key string, n map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if m, ok := c.(map[string]any); ok {
				fn(k, m)
			}
			walk(c, fn)
		}
	case []any:
		for _, c := range v {
			walk(c, fn)
		}
	}
}

func relName(v any) string {
	m, _ := v.(map[string]any)
	name, _ := m["relname"].(string)
	return name
}

func relSchema(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["schemaname"].(string)
	return s
}

// access is what one statement reads and writes.
type access struct {
	reads, writes []string
	// uncacheable is set, with the reason, when a read must never be cached
	// (system catalogs and statistics views, locking reads).
	uncacheable string
}

// analyze derives the tables a statement reads and writes from its parse
// tree: every RangeVar (FROM items, joins, subqueries, CTE bodies) is a read
// unless it names a CTE of the statement; the relation of every INSERT,
// UPDATE, DELETE or MERGE, data-modifying CTEs included, is a write, closed
// over the schema's cascading foreign keys.
func analyze(sql string, si *schemaInfo) (access, error) {
	tree, err := parseJSON(sql)
	if err != nil {
		return access{}, err
	}
	var a access
	ctes := map[string]bool{}
	walk(tree, func(k string, n map[string]any) {
		if k == "CommonTableExpr" {
			if name, ok := n["ctename"].(string); ok {
				ctes[name] = true
			}
		}
	})
	targets := map[string]bool{} // the RangeVar maps that are write targets
	var writeKinds [][2]string   // (table, "delete"|"update"|"insert")
	walk(tree, func(k string, n map[string]any) {
		var kind string
		switch k {
		case "InsertStmt":
			kind = "insert"
		case "UpdateStmt":
			kind = "update"
		case "DeleteStmt":
			kind = "delete"
		case "MergeStmt":
			kind = "merge"
		default:
			if k == "lockingClause" || (k == "SelectStmt" && n["lockingClause"] != nil) {
				a.uncacheable = "locking read (FOR UPDATE/SHARE)"
			}
			return
		}
		rel := relName(n["relation"])
		writeKinds = append(writeKinds, [2]string{rel, kind})
		targets[rel] = true
	})
	var unknown []string
	walk(tree, func(k string, n map[string]any) {
		if k != "RangeVar" && k != "relation" {
			return
		}
		name := relName(n)
		if name == "" {
			return
		}
		schema := relSchema(n)
		if schema == "" && ctes[name] {
			return
		}
		if schema == "pg_catalog" || schema == "information_schema" || strings.HasPrefix(name, "pg_") {
			a.uncacheable = "reads system catalog " + name
			return
		}
		if !si.tables[name] {
			unknown = appendUnique(unknown, name)
			return
		}
		if k == "RangeVar" || !targets[name] {
			a.reads = appendUnique(a.reads, name)
		}
	})
	if len(unknown) > 0 {
		return a, fmt.Errorf("unknown table(s) %s: not created in schema/ (a view or a typo?)", strings.Join(unknown, ", "))
	}
	for _, w := range writeKinds {
		a.writes = appendUnique(a.writes, w[0])
		if w[1] == "delete" || w[1] == "update" || w[1] == "merge" {
			a.writes = closeCascade(a.writes, w[0], w[1], si)
		}
	}
	sort.Strings(a.reads)
	sort.Strings(a.writes)
	return a, nil
}

// closeCascade adds the tables a delete/update of table changes through
// foreign-key actions, transitively.
func closeCascade(set []string, table, kind string, si *schemaInfo) []string {
	var next []string
	if kind == "delete" || kind == "merge" {
		next = append(next, si.onDelete[table]...)
	}
	if kind == "update" || kind == "merge" {
		next = append(next, si.onUpdate[table]...)
	}
	for _, c := range next {
		if contains(set, c) {
			continue
		}
		set = append(set, c)
		// A cascaded delete deletes; a SET NULL/DEFAULT updates. Treat the
		// child as both to stay conservative.
		set = closeCascade(set, c, "merge", si)
	}
	return set
}

func appendUnique(s []string, v string) []string {
	if contains(s, v) {
		return s
	}
	return append(s, v)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// copyFromSQL finds the SQL of a :copyfrom query in queries/*.sql (sqlc
// emits no query constant for it).
func querySQLFromFiles(dir, name string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return "", err
	}
	marker := "-- name: " + name + " "
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		s := string(b)
		i := strings.Index(s, marker)
		if i < 0 {
			continue
		}
		s = s[i:]
		if j := strings.Index(s, ";"); j >= 0 {
			s = s[:j+1]
		}
		return s, nil
	}
	return "", fmt.Errorf("query %s: no %q in %s/*.sql", name, strings.TrimSpace(marker), dir)
}
