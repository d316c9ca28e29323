#!/bin/sh
# e2e-haproxy-2.6.sh -- make check entry: tests/e2e-haproxy.sh against HAProxy 2.6.
exec sh "$(dirname "$0")/e2e-haproxy.sh" 2.6
