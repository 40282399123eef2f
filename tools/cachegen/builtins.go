package main

// How cachegen treats a call of a PostgreSQL built-in function. A call of a
// function that is neither listed here nor defined in schema/ is opaque: the
// query is uncacheable and primary-only unless its comment declares what it
// reads (see resolve).
type builtinKind int

const (
	// pure: the result depends only on the arguments and the rows read (the
	// immutable and statement-stable built-ins below, aggregates and window
	// functions). It does not change what a query reads or writes.
	pure builtinKind = iota + 1
	// volatile: the result changes from call to call (time, randomness,
	// session state): the query's result is never cached. It writes nothing,
	// so a replica may still run it.
	volatile
	// sideEffect: the call changes database state that is not a table of
	// schema/ (a sequence, a lock, a notification, a setting): the query is
	// uncacheable and primary-only; a replica refuses it (25006).
	sideEffect
)

var builtins = map[string]builtinKind{}

func init() {
	for kind, names := range map[builtinKind][]string{
		pure: {
			// aggregates
			"count", "sum", "avg", "min", "max", "array_agg", "string_agg", "json_agg", "jsonb_agg",
			"json_object_agg", "jsonb_object_agg", "bool_and", "bool_or", "every", "bit_and", "bit_or",
			"percentile_cont", "percentile_disc", "mode", "stddev", "stddev_pop", "stddev_samp",
			"variance", "var_pop", "var_samp", "corr", "covar_pop", "covar_samp", "regr_slope",
			"regr_intercept", "any_value",
			// window functions
			"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
			"first_value", "last_value", "nth_value",
			// math
			"abs", "round", "trunc", "floor", "ceil", "ceiling", "sqrt", "cbrt", "power", "pow", "exp",
			"ln", "log", "log10", "mod", "sign", "div", "width_bucket", "greatest", "least", "pi",
			// strings
			"lower", "upper", "length", "char_length", "character_length", "octet_length", "bit_length",
			"substr", "substring", "trim", "btrim", "ltrim", "rtrim", "replace", "concat", "concat_ws",
			"split_part", "strpos", "position", "left", "right", "lpad", "rpad", "repeat", "reverse",
			"initcap", "md5", "sha224", "sha256", "sha384", "sha512", "encode", "decode", "format",
			"quote_ident", "quote_literal", "quote_nullable", "regexp_replace", "regexp_match",
			"regexp_matches", "regexp_split_to_array", "regexp_split_to_table", "regexp_like",
			"regexp_count", "starts_with", "translate", "ascii", "chr", "to_hex", "overlay",
			"string_to_array", "string_to_table", "array_to_string", "normalize", "casefold",
			// arrays and set-returning helpers
			"unnest", "array_length", "array_lower", "array_upper", "array_ndims", "array_dims",
			"cardinality", "array_position", "array_positions", "array_remove", "array_replace",
			"array_append", "array_prepend", "array_cat", "array_fill", "generate_series",
			"generate_subscripts", "trim_array",
			// json
			"to_json", "to_jsonb", "json_build_object", "jsonb_build_object", "json_build_array",
			"jsonb_build_array", "json_object", "jsonb_object", "jsonb_set", "jsonb_set_lax",
			"jsonb_insert", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_pretty", "jsonb_typeof",
			"json_typeof", "jsonb_array_length", "json_array_length", "jsonb_extract_path",
			"jsonb_extract_path_text", "json_extract_path", "json_extract_path_text",
			"jsonb_array_elements", "jsonb_array_elements_text", "json_array_elements",
			"json_array_elements_text", "jsonb_each", "jsonb_each_text", "json_each", "json_each_text",
			"jsonb_object_keys", "json_object_keys", "jsonb_path_exists", "jsonb_path_match",
			"jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
			"jsonb_populate_record", "jsonb_populate_recordset", "jsonb_to_record", "jsonb_to_recordset",
			"row_to_json", "array_to_json",
			// dates and times, from their arguments only
			"date_trunc", "date_part", "extract", "date_bin", "make_date", "make_time", "make_timestamp",
			"make_timestamptz", "make_interval", "justify_days", "justify_hours", "justify_interval",
			"isfinite", "to_char", "to_date", "to_number", "to_timestamp",
			// uuids and misc
			"uuid_extract_timestamp", "uuid_extract_version", "num_nulls", "num_nonnulls", "nullif",
			"coalesce", "current_database", "current_schema", "pg_typeof", "format_type",
		},
		volatile: {
			"now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
			"random", "random_normal", "setseed", "gen_random_uuid", "uuidv4", "uuidv7",
			"uuid_generate_v1", "uuid_generate_v4", "current_setting", "pg_backend_pid",
			"inet_client_addr", "inet_client_port", "inet_server_addr", "version", "age",
			"pg_sleep", "pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_last_wal_replay_lsn",
			"pg_is_in_recovery", "txid_current_snapshot", "pg_current_snapshot", "currval", "lastval",
		},
		sideEffect: {
			"nextval", "setval", "pg_notify", "set_config", "txid_current",
			"pg_current_xact_id", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_advisory_lock_shared",
			"pg_advisory_xact_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_xact_lock",
			"pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock",
			"pg_advisory_unlock_all", "pg_advisory_unlock_shared", "pg_cancel_backend",
			"pg_terminate_backend", "pg_reload_conf", "lo_create", "lo_import", "lo_unlink",
			"pg_logical_emit_message",
		},
	} {
		for _, n := range names {
			builtins[n] = kind
		}
	}
}
