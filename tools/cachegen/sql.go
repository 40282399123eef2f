package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// schemaInfo is what the generator needs from schema/: the relations, the
// foreign-key actions that make a write of one table change another, the
// views (read through to their base tables), the functions (analysed for
// what they read and write) and the triggers (followed like foreign keys).
type schemaInfo struct {
	tables     map[string]bool       // plain and partitioned tables: each gets a notification trigger
	partOf     map[string]string     // partition -> its partitioned table
	matviews   map[string]bool       // materialized views: read like tables, written by REFRESH
	views      map[string]any        // view -> the parse tree of its query
	foreign    map[string]string     // foreign table -> its server: read uncached, no trigger can see its writes
	rls        map[string]bool       // tables with row-level security: their rows depend on the session
	rules      map[string][]*ruleDef // table or view -> its rules (followed like triggers)
	funcs      map[string][]*funcDef
	triggers   map[string][]*trigDef // table or view -> its triggers
	onDelete   map[string][]string   // parent -> children changed by a DELETE of parent
	onUpdate   map[string][]string   // parent -> children changed by an UPDATE of parent
	fkChildren map[string][]string   // parent -> every table referencing it (TRUNCATE ... CASCADE)

	mu    sync.Mutex // held by analyze and resolve: memo and stack are shared
	memo  map[*funcDef]*access
	stack map[*funcDef]bool
}

// funcDef is a CREATE FUNCTION or CREATE PROCEDURE of schema/.
type funcDef struct {
	name, file string
	lang       string
	nargs      int
	body       any    // LANGUAGE sql: the parsed statements of its body
	src        string // the CREATE FUNCTION statement (plpgsql is parsed from it)
	decl       *policy
}

// trigDef is a CREATE TRIGGER of schema/.
type trigDef struct {
	name, table, fn, file string
	events                int // TRIGGER_TYPE_* bits: 4 insert, 8 delete, 16 update, 32 truncate
	decl                  *policy
	// transition are the names of its transition tables (REFERENCING OLD
	// TABLE AS … NEW TABLE AS …): the rows the triggering statement changed
	// in table, which its function reads like tables.
	transition []string
}

// ruleDef is a CREATE RULE of schema/: a write of table that fires it also
// runs its actions.
type ruleDef struct {
	name, table, file string
	events            int   // trigger event bits of its event (see events)
	actions           []any // the parse trees of its actions
}

// ruleEvents maps a rule's event to the trigger event bits write uses.
var ruleEvents = map[string]int{"CMD_INSERT": 4, "CMD_DELETE": 8, "CMD_UPDATE": 16}

// loadSchema parses the goose Up sections of dir/*.sql, in file order.
func loadSchema(dir string) (*schemaInfo, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	si := &schemaInfo{
		tables: map[string]bool{}, partOf: map[string]string{}, matviews: map[string]bool{},
		views: map[string]any{}, funcs: map[string][]*funcDef{}, triggers: map[string][]*trigDef{},
		foreign: map[string]string{}, rls: map[string]bool{}, rules: map[string][]*ruleDef{},
		onDelete: map[string][]string{}, onUpdate: map[string][]string{}, fkChildren: map[string][]string{},
		memo: map[*funcDef]*access{}, stack: map[*funcDef]bool{},
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := si.load(filepath.Base(f), gooseUp(string(b))); err != nil {
			return nil, err
		}
	}
	return si, nil
}

func (si *schemaInfo) load(file, up string) error {
	tree, err := parseJSON(up)
	if err != nil {
		return fmt.Errorf("parse %s: %w", file, err)
	}
	m, _ := tree.(map[string]any)
	stmts, _ := m["stmts"].([]any)
	for _, s := range stmts {
		raw, _ := s.(map[string]any)
		loc, _ := raw["stmt_location"].(float64)
		n, _ := raw["stmt_len"].(float64)
		text := up[int(loc):]
		if n > 0 && int(loc+n) <= len(up) {
			text = up[int(loc):int(loc+n)]
		}
		stmt, _ := raw["stmt"].(map[string]any)
		for kind, v := range stmt {
			node, _ := v.(map[string]any)
			if err := si.loadStmt(file, kind, node, text); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		}
	}
	return nil
}

// otherSchema returns sc, the schema a statement of schema/ creates a
// relation in or a query names one in, when it is not the one evaldb
// migrates (unqualified, or public) nor a system schema; else "".
func otherSchema(sc string) string {
	switch sc {
	case "", "public", "pg_catalog", "information_schema":
		return ""
	}
	return sc
}

// errOtherSchema says why a relation of another schema is refused.
func errOtherSchema(sc, name string) error {
	return fmt.Errorf("%s.%s is in schema %s: cachegen, the generated notification triggers and the trigger check at Open match relations by name in the one schema evaldb migrates (unqualified names, or public); create it there unqualified, or leave it out of schema/ and queries/ and run its SQL by hand through DB()", sc, name, sc)
}

func (si *schemaInfo) loadStmt(file, kind string, n map[string]any, text string) error {
	var created any // the relation the statement creates
	switch kind {
	case "CreateStmt":
		created = n["relation"]
	case "ViewStmt":
		created = n["view"]
	case "CreateTableAsStmt":
		into, _ := n["into"].(map[string]any)
		created = into["rel"]
	case "CreateForeignTableStmt":
		base, _ := n["base"].(map[string]any)
		created = base["relation"]
	}
	if sc := otherSchema(relSchema(created)); sc != "" {
		return errOtherSchema(sc, relName(created))
	}
	switch kind {
	case "CreateStmt":
		child := relName(n["relation"])
		si.tables[child] = true
		if n["partbound"] != nil {
			if ps, _ := n["inhRelations"].([]any); len(ps) == 1 {
				if rv, ok := ps[0].(map[string]any)["RangeVar"]; ok {
					si.partOf[child] = relName(rv)
				}
			}
		}
		// Column constraints and table constraints both hold FKs.
		walk(n["tableElts"], func(k string, c map[string]any) {
			if k == "Constraint" {
				si.addFK(child, c)
			}
		})
	case "AlterTableStmt":
		child := relName(n["relation"])
		walk(n["cmds"], func(k string, c map[string]any) {
			switch {
			case k == "Constraint":
				si.addFK(child, c)
			case k == "AlterTableCmd" && (c["subtype"] == "AT_EnableRowSecurity" || c["subtype"] == "AT_ForceRowSecurity"):
				si.rls[child] = true
			case k == "AlterTableCmd" && c["subtype"] == "AT_DisableRowSecurity":
				delete(si.rls, child)
			}
		})
	case "CreateForeignTableStmt":
		base, _ := n["base"].(map[string]any)
		si.foreign[relName(base["relation"])] = str(n["servername"])
	case "RuleStmt":
		ev := str(n["event"])
		if ruleEvents[ev] == 0 {
			return nil // ON SELECT: a view's own rule
		}
		r := &ruleDef{name: str(n["rulename"]), table: relName(n["relation"]), file: file, events: ruleEvents[ev], actions: listOf(n["actions"])}
		if n["replace"] == true {
			si.dropRule(r.table, r.name)
		}
		si.rules[r.table] = append(si.rules[r.table], r)
	case "CreateTableAsStmt":
		into, _ := n["into"].(map[string]any)
		name := relName(into["rel"])
		if n["objtype"] == "OBJECT_MATVIEW" {
			si.matviews[name] = true
		} else {
			si.tables[name] = true
		}
	case "ViewStmt":
		si.views[relName(n["view"])] = n["query"]
	case "CreateFunctionStmt":
		return si.addFunc(file, n, text)
	case "CreateTrigStmt":
		t := &trigDef{name: str(n["trigname"]), table: relName(n["relation"]), fn: lastName(n["funcname"]), file: file}
		t.events, _ = toInt(n["events"])
		for _, r := range listOf(n["transitionRels"]) {
			if tt, ok := r.(map[string]any)["TriggerTransition"].(map[string]any); ok {
				t.transition = append(t.transition, str(tt["name"]))
			}
		}
		if n["isconstraint"] == true && t.events == 0 {
			t.events = 4 | 8 | 16
		}
		d, err := declaration(text)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.name, err)
		}
		t.decl = d
		if n["replace"] == true {
			si.dropTrigger(t.table, t.name)
		}
		si.triggers[t.table] = append(si.triggers[t.table], t)
	case "DropStmt":
		for _, o := range listOf(n["objects"]) {
			name := lastName(o)
			switch n["removeType"] {
			case "OBJECT_TABLE":
				delete(si.tables, name)
				delete(si.partOf, name)
				delete(si.triggers, name)
				delete(si.rules, name)
				delete(si.rls, name)
			case "OBJECT_FOREIGN_TABLE":
				delete(si.foreign, name)
			case "OBJECT_VIEW":
				delete(si.views, name)
				delete(si.triggers, name)
				delete(si.rules, name)
			case "OBJECT_MATVIEW":
				delete(si.matviews, name)
			case "OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE":
				if ow, ok := o.(map[string]any)["ObjectWithArgs"].(map[string]any); ok {
					delete(si.funcs, lastName(ow["objname"]))
				}
			case "OBJECT_TRIGGER":
				// DROP TRIGGER name ON table: objects is [table..., name].
				parts := names(o)
				if len(parts) >= 2 {
					si.dropTrigger(parts[len(parts)-2], parts[len(parts)-1])
				}
			case "OBJECT_RULE":
				if parts := names(o); len(parts) >= 2 {
					si.dropRule(parts[len(parts)-2], parts[len(parts)-1])
				}
			}
		}
	case "AlterObjectSchemaStmt":
		switch n["objectType"] {
		case "OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE":
			if sc := otherSchema(str(n["newschema"])); sc != "" {
				return errOtherSchema(sc, relName(n["relation"]))
			}
		}
	case "RenameStmt":
		switch n["renameType"] {
		case "OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE":
			si.renameFunc(n)
			return nil
		}
		if n["renameType"] != "OBJECT_TABLE" && n["renameType"] != "OBJECT_VIEW" && n["renameType"] != "OBJECT_MATVIEW" && n["renameType"] != "OBJECT_FOREIGN_TABLE" {
			return nil
		}
		from, to := relName(n["relation"]), str(n["newname"])
		renameKey(si.tables, from, to)
		renameKey(si.views, from, to)
		renameKey(si.matviews, from, to)
		renameKey(si.foreign, from, to)
		renameKey(si.rls, from, to)
		if rs, ok := renameKey(si.rules, from, to); ok {
			for _, r := range rs {
				r.table = to
			}
		}
		if ts, ok := renameKey(si.triggers, from, to); ok {
			for _, t := range ts {
				t.table = to
			}
		}
		rename := func(m map[string][]string) {
			for k, vs := range m {
				for i, v := range vs {
					if v == from {
						vs[i] = to
					}
				}
				if k == from {
					delete(m, k)
					m[to] = vs
				}
			}
		}
		rename(si.onDelete)
		rename(si.onUpdate)
		rename(si.fkChildren)
	}
	return nil
}

// renameFunc follows ALTER FUNCTION … RENAME TO: the overloads it names
// (all of them when it gives no argument list) take the new name, and so
// do the triggers that run them (PostgreSQL binds a trigger to its
// function, not to the name).
func (si *schemaInfo) renameFunc(n map[string]any) {
	ow, _ := n["object"].(map[string]any)["ObjectWithArgs"].(map[string]any)
	from, to := lastName(ow["objname"]), str(n["newname"])
	nargs := -1
	if ow["args_unspecified"] != true {
		nargs = len(listOf(ow["objargs"]))
	}
	var keep []*funcDef
	trigger := false // a trigger function (no arguments) moved
	for _, f := range si.funcs[from] {
		if nargs >= 0 && f.nargs != nargs {
			keep = append(keep, f)
			continue
		}
		f.name = to
		si.funcs[to] = append(si.funcs[to], f)
		trigger = trigger || f.nargs == 0
	}
	if len(keep) > 0 {
		si.funcs[from] = keep
	} else {
		delete(si.funcs, from)
	}
	if !trigger {
		return
	}
	for _, ts := range si.triggers {
		for _, t := range ts {
			if t.fn == from {
				t.fn = to
			}
		}
	}
}

func (si *schemaInfo) dropRule(table, name string) {
	rs := si.rules[table]
	for i, r := range rs {
		if r.name == name {
			si.rules[table] = append(rs[:i:i], rs[i+1:]...)
			return
		}
	}
}

func (si *schemaInfo) dropTrigger(table, name string) {
	ts := si.triggers[table]
	for i, t := range ts {
		if t.name == name {
			si.triggers[table] = append(ts[:i:i], ts[i+1:]...)
			return
		}
	}
}

func (si *schemaInfo) addFunc(file string, n map[string]any, text string) error {
	f := &funcDef{name: lastName(n["funcname"]), file: file, src: text}
	for _, p := range listOf(n["parameters"]) {
		fp, _ := p.(map[string]any)["FunctionParameter"].(map[string]any)
		if mode := str(fp["mode"]); mode != "FUNC_PARAM_OUT" && mode != "FUNC_PARAM_TABLE" {
			f.nargs++
		}
	}
	var asBody string
	for _, o := range listOf(n["options"]) {
		de, _ := o.(map[string]any)["DefElem"].(map[string]any)
		switch str(de["defname"]) {
		case "language":
			f.lang = strings.ToLower(str(de["arg"].(map[string]any)["String"].(map[string]any)["sval"]))
		case "as":
			if items := listOf(de["arg"]); len(items) > 0 {
				if s, ok := items[0].(map[string]any)["String"].(map[string]any); ok {
					asBody = str(s["sval"])
				}
			}
		}
	}
	if b, ok := n["sql_body"]; ok {
		f.body = b
	} else if f.lang == "sql" {
		body, err := parseJSON(asBody)
		if err != nil {
			return fmt.Errorf("function %s: parse its LANGUAGE sql body: %w", f.name, err)
		}
		f.body = body
	}
	d, err := declaration(text)
	if err != nil {
		return fmt.Errorf("function %s: %w", f.name, err)
	}
	f.decl = d
	defs := si.funcs[f.name]
	for i, old := range defs {
		if old.nargs == f.nargs { // CREATE OR REPLACE, or an overload cachegen cannot tell apart
			defs = append(defs[:i:i], defs[i+1:]...)
			break
		}
	}
	si.funcs[f.name] = append(defs, f)
	return nil
}

// declaration reads a "-- cache: reads=… writes=…" line from the comment
// that precedes a statement of schema/ (a function's or a trigger's).
func declaration(stmtText string) (*policy, error) {
	var doc []string
	for _, line := range strings.Split(stmtText, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		c, ok := strings.CutPrefix(line, "--")
		if !ok {
			break
		}
		doc = append(doc, strings.TrimSpace(c))
	}
	p, err := parsePolicy(doc)
	if err != nil || !p.set {
		return nil, err
	}
	if !p.readsSet && !p.writesSet {
		return nil, fmt.Errorf("its cache: line may only hold reads=TABLES and writes=TABLES")
	}
	return &p, nil
}

func (si *schemaInfo) addFK(child string, c map[string]any) {
	if c["contype"] != "CONSTR_FOREIGN" {
		return
	}
	parent := relName(c["pktable"])
	si.fkChildren[parent] = appendUnique(si.fkChildren[parent], child)
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

// relations returns every relation a query can read or write, in name
// order: the tables and the materialized views.
func (si *schemaInfo) relations() []string {
	var rs []string
	for t := range si.tables {
		rs = append(rs, t)
	}
	for t := range si.matviews {
		rs = append(rs, t)
	}
	sort.Strings(rs)
	return rs
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

func str(v any) string { s, _ := v.(string); return s }

// renameKey moves m[from], if there is one, to m[to].
func renameKey[V any](m map[string]V, from, to string) (V, bool) {
	v, ok := m[from]
	if ok {
		delete(m, from)
		m[to] = v
	}
	return v, ok
}

func toInt(v any) (int, bool) { f, ok := v.(float64); return int(f), ok }

// listOf returns a JSON list, unwrapping a {"List": {"items": [...]}} node.
func listOf(v any) []any {
	switch v := v.(type) {
	case []any:
		return v
	case map[string]any:
		if l, ok := v["List"].(map[string]any); ok {
			items, _ := l["items"].([]any)
			return items
		}
	}
	return nil
}

// names returns the strings of a qualified name ([{"String": {"sval": …}}…]).
func names(v any) []string {
	var out []string
	for _, it := range listOf(v) {
		if s, ok := it.(map[string]any)["String"].(map[string]any); ok {
			out = append(out, str(s["sval"]))
		}
	}
	return out
}

func lastName(v any) string {
	ns := names(v)
	if len(ns) == 0 {
		return ""
	}
	return ns[len(ns)-1]
}

// access is what one statement (or function) reads and writes.
type access struct {
	reads, writes []string
	// uncacheable is set, with the reason, when a result must never be
	// cached (system catalogs and statistics views, locking reads, now(),
	// random() and other volatile built-ins).
	uncacheable string
	// primaryOnly is set, with the reason, when the statement changes state
	// that is not a table (nextval, advisory locks, pg_notify): a replica
	// would refuse it.
	primaryOnly string
	// opaque lists the calls cachegen cannot see through, each with why.
	opaque []string
}

func (a *access) merge(b access) {
	for _, t := range b.reads {
		a.reads = appendUnique(a.reads, t)
	}
	for _, t := range b.writes {
		a.writes = appendUnique(a.writes, t)
	}
	if a.uncacheable == "" {
		a.uncacheable = b.uncacheable
	}
	if a.primaryOnly == "" {
		a.primaryOnly = b.primaryOnly
	}
	for _, o := range b.opaque {
		a.opaque = appendUnique(a.opaque, o)
	}
}

// analyzer collects the access of one statement tree.
type analyzer struct {
	si      *schemaInfo
	a       access
	unknown []string
	seen    map[string]bool // table/kind pairs already closed over
	err     error
	// transition are the transition tables of the trigger whose function
	// is analysed: reading them reads no table (the write that fired the
	// trigger is already counted).
	transition []string
}

func (si *schemaInfo) newAnalyzer() *analyzer { return &analyzer{si: si, seen: map[string]bool{}} }

// queryStatements are the statements cachegen analyses in queries/.
var queryStatements = map[string]bool{
	"SelectStmt": true, "InsertStmt": true, "UpdateStmt": true, "DeleteStmt": true, "MergeStmt": true,
	"TruncateStmt": true, "RefreshMatViewStmt": true, "CallStmt": true,
}

// analyze derives the tables a query reads and writes from its parse tree:
//   - every RangeVar (FROM items, joins, subqueries, CTE bodies) is a read,
//     unless it names a CTE of the statement; a view reads its base tables;
//   - the target of every INSERT, UPDATE, DELETE, MERGE, TRUNCATE (also in
//     data-modifying CTEs) and REFRESH MATERIALIZED VIEW is a write, closed
//     over the foreign-key actions and the triggers of schema/;
//   - function calls: see call.
func (si *schemaInfo) analyze(sql string) (access, error) {
	tree, err := parseJSON(sql)
	if err != nil {
		return access{}, err
	}
	m, _ := tree.(map[string]any)
	for _, s := range listOf(m["stmts"]) {
		stmt, _ := s.(map[string]any)["stmt"].(map[string]any)
		for kind := range stmt {
			if !queryStatements[kind] {
				return access{}, fmt.Errorf("cachegen cannot analyse a %s statement: queries/ may hold SELECT, INSERT, UPDATE, DELETE, MERGE, TRUNCATE, REFRESH MATERIALIZED VIEW and CALL (run other SQL by hand through the executor)", kind)
			}
		}
	}
	si.mu.Lock()
	defer si.mu.Unlock()
	z := si.newAnalyzer()
	z.tree(tree)
	if z.err != nil {
		return z.a, z.err
	}
	if len(z.unknown) > 0 {
		return z.a, fmt.Errorf("unknown table(s) %s: no CREATE TABLE, CREATE VIEW or CREATE MATERIALIZED VIEW in schema/ makes them (a typo, or a migration missing?)", strings.Join(z.unknown, ", "))
	}
	sort.Strings(z.a.reads)
	sort.Strings(z.a.writes)
	return z.a, nil
}

func (z *analyzer) tree(tree any) {
	ctes := map[string]bool{}
	walk(tree, func(k string, n map[string]any) {
		if k == "CommonTableExpr" {
			if name, ok := n["ctename"].(string); ok {
				ctes[name] = true
			}
		}
	})
	targets := map[string]bool{} // the relations that are write targets
	type write struct{ table, kind string }
	var writes []write
	walk(tree, func(k string, n map[string]any) {
		var kind string
		switch k {
		case "InsertStmt":
			kind = "insert"
			if oc, ok := n["onConflictClause"].(map[string]any); ok && oc["action"] == "ONCONFLICT_UPDATE" {
				kind = "upsert"
			}
		case "UpdateStmt":
			kind = "update"
		case "DeleteStmt":
			kind = "delete"
		case "MergeStmt":
			kind = "merge"
		case "RefreshMatViewStmt":
			kind = "refresh"
		case "TruncateStmt":
			kind = "truncate"
			if n["behavior"] == "DROP_CASCADE" {
				kind = "truncate cascade"
			}
			for _, r := range listOf(n["relations"]) {
				rel := relName(r.(map[string]any)["RangeVar"])
				writes = append(writes, write{rel, kind})
				targets[rel] = true
			}
			return
		case "SQLValueFunction":
			if z.a.uncacheable == "" {
				z.a.uncacheable = "uses " + strings.TrimPrefix(str(n["op"]), "SVFOP_") + ", which changes between calls"
			}
			return
		case "FuncCall":
			z.call(n)
			return
		case "TypeCast":
			if c, ok := n["arg"].(map[string]any)["A_Const"].(map[string]any); ok && z.a.uncacheable == "" {
				v, _ := c["sval"].(map[string]any)
				if lit := strings.ToLower(strings.TrimSpace(str(v["sval"]))); timeLiterals[lit] {
					z.a.uncacheable = "casts '" + lit + "' to " + lastName(n["typeName"].(map[string]any)["names"]) + ", which changes between calls"
				}
			}
			return
		default:
			if k == "lockingClause" || (k == "SelectStmt" && n["lockingClause"] != nil) {
				z.a.uncacheable = "locking read (FOR UPDATE/SHARE)"
			}
			return
		}
		rel := relName(n["relation"])
		writes = append(writes, write{rel, kind})
		targets[rel] = true
	})
	walk(tree, func(k string, n map[string]any) {
		if k != "RangeVar" && k != "relation" {
			return
		}
		name := relName(n)
		if name == "" {
			return
		}
		schema := relSchema(n)
		if schema == "" && (ctes[name] || contains(z.transition, name)) {
			return
		}
		if sc := otherSchema(schema); sc != "" {
			if z.err == nil {
				z.err = errOtherSchema(sc, name)
			}
			return
		}
		if schema == "pg_catalog" || schema == "information_schema" || strings.HasPrefix(name, "pg_") {
			z.a.uncacheable = "reads system catalog " + name
			return
		}
		if k == "relation" && targets[name] {
			return
		}
		z.read(name)
	})
	for _, w := range writes {
		z.write(w.table, w.kind)
	}
}

// timeLiterals are the input strings that date and time types read as
// the current time ('now'::timestamptz, date 'today').
var timeLiterals = map[string]bool{"now": true, "today": true, "tomorrow": true, "yesterday": true}

// read records a read of a relation: a table or materialized view itself,
// a view through its base tables. A read of a foreign table or of a table
// with row-level security makes the statement uncacheable.
func (z *analyzer) read(name string) {
	si := z.si
	switch {
	case si.tables[name] || si.matviews[name]:
		z.a.reads = appendUnique(z.a.reads, name)
		if si.rls[name] && z.a.uncacheable == "" {
			z.a.uncacheable = "reads " + name + ", which has row-level security: its rows depend on the session's role and settings, which a cache key does not hold"
		}
	case si.foreign[name] != "":
		z.a.reads = appendUnique(z.a.reads, name)
		if z.a.uncacheable == "" {
			z.a.uncacheable = "reads foreign table " + name + " (server " + si.foreign[name] + "), whose writes happen where no trigger of this database sees them"
		}
	case si.views[name] != nil:
		if z.seen["view "+name] {
			return
		}
		z.seen["view "+name] = true
		z.tree(si.views[name])
	default:
		z.unknown = appendUnique(z.unknown, name)
	}
}

// events maps a write kind to the trigger events it fires.
var events = map[string]int{
	"insert": 4, "delete": 8, "update": 16, "upsert": 4 | 16, "merge": 4 | 8 | 16,
	"truncate": 32, "truncate cascade": 32,
}

// write records a write of table and what it changes in turn: foreign-key
// actions (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT; TRUNCATE
// CASCADE), partitions and their parents, and the tables the triggers on
// table write.
func (z *analyzer) write(table, kind string) {
	if z.seen[table+"/"+kind] {
		return
	}
	z.seen[table+"/"+kind] = true
	si := z.si
	if q := si.views[table]; q != nil {
		// A write through a view writes its base tables (an updatable view
		// has one; INSTEAD OF triggers are followed below).
		sub := si.newAnalyzer()
		sub.tree(q)
		for _, t := range sub.a.reads {
			z.write(t, kind)
		}
	} else if !si.tables[table] && !si.matviews[table] && si.foreign[table] == "" {
		z.unknown = appendUnique(z.unknown, table)
		return
	} else {
		z.a.writes = appendUnique(z.a.writes, table)
	}
	if p := si.partOf[table]; p != "" {
		z.a.writes = appendUnique(z.a.writes, p)
	}
	for c, p := range si.partOf {
		if p == table {
			z.write(c, kind)
		}
	}
	if kind == "delete" || kind == "merge" {
		for _, c := range si.onDelete[table] {
			z.write(c, "merge") // a cascaded delete deletes, SET NULL/DEFAULT updates
		}
	}
	if kind == "update" || kind == "upsert" || kind == "merge" {
		for _, c := range si.onUpdate[table] {
			z.write(c, "merge")
		}
	}
	if kind == "truncate cascade" {
		for _, c := range si.fkChildren[table] {
			z.write(c, kind)
		}
	}
	for _, r := range si.rules[table] {
		// A rule's actions run with the write (DO ALSO) or instead of it
		// (DO INSTEAD, whose own write is still counted: a safe excess).
		if r.events&events[kind] != 0 {
			for _, act := range r.actions {
				z.ruleAction(act)
			}
		}
	}
	for _, t := range si.triggers[table] {
		if t.events&events[kind] == 0 {
			continue
		}
		if t.decl != nil {
			for _, w := range t.decl.writes {
				z.write(w, "merge")
			}
			continue
		}
		fa := si.funcAccess(t.fn, -1, si.transitionNames(t.fn))
		if len(fa.opaque) > 0 && z.err == nil {
			z.err = fmt.Errorf("writes %s, whose trigger %s (schema/%s) runs %s: %s. cachegen cannot tell which tables it changes; write `-- cache: writes=TABLE,…` (or `writes=` for none) in the comment just above CREATE TRIGGER %s",
				table, t.name, t.file, t.fn, strings.Join(fa.opaque, "; "), t.name)
		}
		for _, w := range fa.writes {
			z.a.writes = appendUnique(z.a.writes, w)
		}
	}
}

// ruleAction follows the actions of a rule: what they write is written;
// what they read, and whether that is cacheable, does not change the
// statement's result. NEW and OLD are
// the rule's row, not relations.
func (z *analyzer) ruleAction(act any) {
	sub := z.si.newAnalyzer()
	sub.seen = z.seen // one closure: a rule that writes back is followed once
	sub.tree(act)
	for _, u := range sub.unknown {
		if u != "new" && u != "old" {
			z.unknown = appendUnique(z.unknown, u)
		}
	}
	sub.a.reads, sub.a.uncacheable = nil, "" // they do not change the statement's result
	z.a.merge(sub.a)
	if z.err == nil {
		z.err = sub.err
	}
}

// transitionNames returns the transition tables of every trigger that runs
// function fn. A trigger function that serves several triggers (one per
// event, as PostgreSQL requires of triggers with transition tables) reads
// each one's under IF TG_OP = …; a branch that named a transition table its
// trigger lacks would fail at run time, never write another table, so
// every name is taken to be in scope.
func (si *schemaInfo) transitionNames(fn string) []string {
	var names []string
	for _, ts := range si.triggers {
		for _, t := range ts {
			if t.fn != fn {
				continue
			}
			for _, n := range t.transition {
				names = appendUnique(names, n)
			}
		}
	}
	sort.Strings(names)
	return names
}

// call classifies a function call:
//   - sqlc.arg/narg/slice (in queries read from queries/) are parameters;
//   - a function of schema/ reads and writes what its body does (LANGUAGE
//     sql and plpgsql with static SQL), or what its "-- cache:" line says;
//   - a known built-in is pure, volatile (uncacheable) or has side effects
//     (uncacheable and primary-only), see builtins.go;
//   - anything else is opaque.
func (z *analyzer) call(n map[string]any) {
	ns := names(n["funcname"])
	if len(ns) == 0 {
		return
	}
	name := ns[len(ns)-1]
	qual := ""
	if len(ns) > 1 {
		qual = ns[0]
	}
	if qual == "sqlc" {
		return
	}
	if qual == "" || qual == "public" {
		if _, ok := z.si.funcs[name]; ok {
			z.a.merge(z.si.funcAccess(name, len(listOf(n["args"])), nil))
			return
		}
	}
	if qual == "" || qual == "pg_catalog" {
		switch builtins[name] {
		case pure:
			return
		case volatile:
			if z.a.uncacheable == "" {
				z.a.uncacheable = "calls " + name + "(), whose result changes between calls"
			}
			return
		case sideEffect:
			why := "calls " + name + "(), which changes database state"
			if z.a.uncacheable == "" {
				z.a.uncacheable = why
			}
			if z.a.primaryOnly == "" {
				z.a.primaryOnly = why
			}
			return
		}
	}
	z.a.opaque = appendUnique(z.a.opaque, strings.Join(ns, ".")+"() is neither a built-in cachegen knows nor a function of schema/")
}

// funcAccess returns what calling the schema/ function name reads and
// writes (the union over its overloads with nargs arguments, or all of them
// when nargs < 0 or none matches). transition are the transition tables of
// the trigger that runs it, if any.
func (si *schemaInfo) funcAccess(name string, nargs int, transition []string) access {
	var a access
	defs := si.funcs[name]
	var match []*funcDef
	for _, f := range defs {
		if nargs < 0 || f.nargs == nargs {
			match = append(match, f)
		}
	}
	if len(match) == 0 {
		match = defs
	}
	if len(match) == 0 {
		a.opaque = []string{name + "() is not a function of schema/"}
	}
	for _, f := range match {
		a.merge(si.funcDefAccess(f, transition))
	}
	return a
}

func (si *schemaInfo) funcDefAccess(f *funcDef, transition []string) access {
	// The analysis depends on the transition tables in scope, so only the
	// plain one (no trigger's, or a trigger's without any) is memoised.
	memo := len(transition) == 0
	if a, ok := si.memo[f]; ok && memo {
		return *a
	}
	if si.stack[f] {
		return access{} // recursion: the outer analysis of f collects its tables
	}
	si.stack[f] = true
	defer delete(si.stack, f)
	z := si.newAnalyzer()
	z.transition = transition
	switch {
	case f.decl != nil:
		for _, t := range f.decl.reads {
			z.read(t)
		}
		for _, t := range f.decl.writes {
			z.write(t, "merge")
		}
	case f.lang == "sql":
		z.tree(f.body)
	case f.lang == "plpgsql":
		z.plpgsql(f)
	default:
		z.a.opaque = append(z.a.opaque, fmt.Sprintf("%s() is LANGUAGE %s", f.name, f.lang))
	}
	if len(z.unknown) > 0 {
		z.a.opaque = append(z.a.opaque, fmt.Sprintf("%s() uses %s, which schema/ does not create", f.name, strings.Join(z.unknown, ", ")))
	}
	if z.err != nil {
		z.a.opaque = append(z.a.opaque, fmt.Sprintf("%s(): %v", f.name, z.err))
	}
	if len(z.a.opaque) > 0 && f.decl == nil {
		z.a.opaque = append(z.a.opaque, fmt.Sprintf("or declare what %s() reads and writes with `-- cache: reads=TABLE,… writes=TABLE,…` in the comment above its CREATE FUNCTION in schema/%s", f.name, f.file))
	}
	sort.Strings(z.a.reads)
	sort.Strings(z.a.writes)
	if memo {
		si.memo[f] = &z.a
	}
	return z.a
}

// plpgsql analyses every SQL statement and expression of a plpgsql
// function. Dynamic SQL (EXECUTE) makes it opaque.
func (z *analyzer) plpgsql(f *funcDef) {
	j, err := pg_query.ParsePlPgSqlToJSON(f.src)
	if err != nil {
		z.a.opaque = append(z.a.opaque, fmt.Sprintf("%s(): parse its plpgsql body: %v", f.name, err))
		return
	}
	var tree any
	if err := json.Unmarshal([]byte(j), &tree); err != nil {
		z.a.opaque = append(z.a.opaque, fmt.Sprintf("%s(): %v", f.name, err))
		return
	}
	walk(tree, func(k string, n map[string]any) {
		switch k {
		case "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors":
			z.a.opaque = appendUnique(z.a.opaque, fmt.Sprintf("%s() runs dynamic SQL (EXECUTE)", f.name))
		case "PLpgSQL_stmt_open":
			if n["dynquery"] != nil {
				z.a.opaque = appendUnique(z.a.opaque, fmt.Sprintf("%s() opens a cursor on dynamic SQL", f.name))
			}
		case "PLpgSQL_expr":
			q := str(n["query"])
			mode, _ := toInt(n["parseMode"])
			switch mode {
			case 0: // a whole statement
			case 2: // an expression
				q = "SELECT " + q
			default: // an assignment "target := expression"
				if i := strings.Index(q, ":="); i >= 0 {
					q = q[i+2:]
				} else if i := strings.Index(q, "="); i >= 0 {
					q = q[i+1:]
				}
				q = "SELECT " + q
			}
			t, err := parseJSON(q)
			if err != nil {
				z.a.opaque = appendUnique(z.a.opaque, fmt.Sprintf("%s(): cannot parse %q: %v", f.name, q, err))
				return
			}
			z.tree(t)
		}
	})
}

// resolve applies a query's cache policy to what analyze found and checks
// the result: the reads= and writes= of a "-- cache:" line stand in for the
// calls cachegen cannot see through; without them such a query is
// uncacheable, primary-only and invalidates every table. A cached query must
// read only relations that carry a notification trigger.
func (si *schemaInfo) resolve(a access, p policy) (access, error) {
	si.mu.Lock()
	defer si.mu.Unlock()
	for _, t := range append(append([]string(nil), p.reads...), p.writes...) {
		if !si.tables[t] && !si.matviews[t] && si.views[t] == nil {
			return a, fmt.Errorf("cache: reads=/writes= names %s, which schema/ does not create", t)
		}
	}
	if p.readsSet || p.writesSet {
		z := si.newAnalyzer()
		z.a = a
		z.a.opaque = nil
		for _, t := range p.reads {
			z.read(t)
		}
		for _, t := range p.writes {
			z.write(t, "merge")
		}
		if z.err != nil {
			return a, z.err
		}
		a = z.a
	} else if len(a.opaque) > 0 {
		why := "it calls a function cachegen cannot analyse: " + strings.Join(a.opaque, "; ") +
			" (declare what the query reads with `-- cache: reads=TABLE,…` and, if it writes, `writes=TABLE,…`)"
		a.uncacheable, a.primaryOnly = why, why
		a.writes = si.relations() // it may write anything
		a.opaque = nil
	}
	sort.Strings(a.reads)
	sort.Strings(a.writes)
	if len(a.writes) == 0 && a.primaryOnly == "" && a.uncacheable == "" && !p.off {
		for _, t := range a.reads {
			if si.matviews[t] {
				return a, fmt.Errorf("it is cached and reads materialized view %s, which can have no trigger: a REFRESH by another instance or by psql would never reach this cache. Mark the query `-- cache: off`", t)
			}
			if !si.tables[t] {
				return a, fmt.Errorf("it is cached and reads %s, which has no notification trigger. Mark the query `-- cache: off`", t)
			}
		}
	}
	return a, nil
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

// querySQLFromFiles finds the SQL of a query in queries/*.sql (sqlc emits no
// query constant for :copyfrom).
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
