#!/bin/sh
# autogen.sh -- regenerate the build system from a clean clone.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
exec autoreconf -fi
