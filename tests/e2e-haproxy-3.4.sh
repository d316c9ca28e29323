#!/bin/sh
# e2e-haproxy-3.4.sh -- make check entry: tests/e2e-haproxy.sh against HAProxy 3.4.
exec sh "$(dirname "$0")/e2e-haproxy.sh" 3.4
