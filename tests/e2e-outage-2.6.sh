#!/bin/sh
# e2e-outage-2.6.sh -- make check entry: tests/e2e-outage.sh against HAProxy 2.6,
# batches zstd-compressed.
exec sh "$(dirname "$0")/e2e-outage.sh" --compression zstd 2.6
