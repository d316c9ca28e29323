#!/bin/sh
# e2e-outage-kill.sh -- make check entry: tests/e2e-outage.sh --kill (spoolcapd
# SIGKILLed and restarted twice during the outage) against HAProxy 2.6, gzip.
exec sh "$(dirname "$0")/e2e-outage.sh" --kill --compression gzip 2.6
