#!/usr/bin/env bash
# CI's check of the dashboard's committed outputs, from the repository root:
#   1. web/openapi.json is what `spectask openapi` prints (the document is the source),
#   2. web/src/shared/api/schema.d.ts is what openapi-typescript makes of it,
#   3. web/dist is what `npm ci && npm run build` makes of the source (the build is
#      deterministic, so any difference means a stale commit).
# Each failure says what to run. Needs cargo, node 20.19+ and npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail=0

mkdir -p target
cargo run -q --bin spectask -- openapi > target/openapi.json
if ! cmp -s target/openapi.json web/openapi.json; then
  echo "web/openapi.json is stale: run \`cargo run -q --bin spectask -- openapi > web/openapi.json && npm run gen:api --prefix web\`" >&2
  diff -u web/openapi.json target/openapi.json | head -40 >&2 || true
  fail=1
fi

npm ci --prefix web --no-audit --no-fund >/dev/null
cp web/src/shared/api/schema.d.ts target/schema.d.ts.committed
npm run --silent gen:api --prefix web >/dev/null
if ! cmp -s target/schema.d.ts.committed web/src/shared/api/schema.d.ts; then
  echo "web/src/shared/api/schema.d.ts is stale: run \`npm run gen:api --prefix web\` and commit it" >&2
  fail=1
fi

npm run --silent build --prefix web >/dev/null
if ! git diff --quiet -- web/dist || [ -n "$(git ls-files --others --exclude-standard web/dist)" ]; then
  echo "web/dist differs from a fresh build: run \`npm run build --prefix web\` and commit web/dist" >&2
  git status --short web/dist >&2
  fail=1
fi

exit $fail
