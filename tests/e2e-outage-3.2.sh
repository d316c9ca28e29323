#!/bin/sh
# e2e-outage-3.2.sh -- make check entry: tests/e2e-outage.sh against HAProxy 3.2,
# batches gzip-compressed.
exec sh "$(dirname "$0")/e2e-outage.sh" --compression gzip 3.2
