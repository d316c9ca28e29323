#!/bin/sh
# e2e-outage-3.4.sh -- make check entry: tests/e2e-outage.sh against HAProxy 3.4,
# batches uncompressed.
exec sh "$(dirname "$0")/e2e-outage.sh" --compression none 3.4
