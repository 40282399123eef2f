package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aah/evaldb/schema"
)

// TestMigrateNeverQuotesThePassword gives Migrate URLs whose password holds
// characters that change how a URL splits; no error may quote any of it.
func TestMigrateNeverQuotesThePassword(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"postgres://h:1/db?password=hun&ter2", // an unescaped '&': "ter2" looks like a parameter
		"postgres://u:hun/ter2@127.0.0.1:1/db",
		"postgres://u:hun@ter2@127.0.0.1:1/db",
		"postgres://u:hunter2@127.0.0.1:1/db?x=%zz",
	} {
		_, err := schema.Migrate(context.Background(), raw)
		if err == nil {
			t.Fatalf("Migrate(%q) succeeded", raw)
		}
		if strings.Contains(err.Error(), "ter2") {
			t.Errorf("Migrate(%q) error quotes the password: %v", raw, err)
		}
	}
}
