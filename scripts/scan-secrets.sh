#!/usr/bin/env bash
# scan-secrets.sh FILE: fail when the test suite's output (go test -v) holds
# the password that internal/dbtest puts into every URL of its throwaway
# cluster, or the e2e test's. Whatever a test logged, every error it printed,
# every panic: none may show a credential.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/scan-secrets.sh go-test-output-file}"
pw=$(sed -n 's/^const Password = "\(.*\)"$/\1/p' internal/dbtest/dbtest.go)
if [ -z "$pw" ]; then
	echo "scan-secrets: cannot read dbtest.Password from internal/dbtest/dbtest.go" >&2
	exit 1
fi
found=0
for secret in "$pw" "e2e-Secret-9"; do
	if grep -n -F -- "$secret" "$out" | sed "s/$secret/<the password>/g" | head -n 20 >&2 && grep -q -F -- "$secret" "$out"; then
		echo "scan-secrets: the test output above contains a password: redact it where it is produced" >&2
		found=1
	fi
done
if [ "$found" = 0 ]; then
	echo "scan-secrets: $(wc -l < "$out") lines of test output, no password"
fi
exit "$found"
