#!/bin/bash
# quickstart.sh -- try or test spoolcap on Debian 12, from a clean clone.
#
#   ./quickstart.sh demo   install what is missing, build, and run the demo
#                          (HAProxy + spoolcapd + a backend on loopback)
#   ./quickstart.sh test   install what is missing, build, run the whole test
#                          suite (make check), then again in a sanitizer
#                          build (ASan + UBSan), then make distcheck, and
#                          print a summary
#
# Packages are installed with apt-get only when missing (as root, or through
# sudo). Builds are out of tree: _build/ and _build-asan/. HAProxy 3.2 and
# 3.4 for the end-to-end tests are unpacked once into tests/.cache/.
# Environment: JOBS (parallel make jobs, default 2).
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
jobs=${JOBS:-2}

packages=(autoconf automake libtool pkg-config gcc make
	libev-dev liblmdb-dev libzstd-dev libcurl4-openssl-dev libinih-dev libdeflate-dev libssl-dev
	libmicrohttpd-dev libsystemd-dev haproxy python3 python3-yaml curl openssl zstd)

bold="" off=""
if [ -t 1 ]; then bold=$(printf '\033[1m'); off=$(printf '\033[0m'); fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
die() { echo "quickstart: $*" >&2; exit 1; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

# Timings and results for the summary.
summary=()
t_start=$(date +%s)
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
note() { summary+=("$(printf '%-28s %s' "$1" "$2")"); }

install_missing() {
	step "Checking Debian packages"
	local t missing=() p
	t=$(date +%s)
	command -v dpkg-query >/dev/null || die "dpkg-query not found: this script is for Debian 12"
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "all ${#packages[@]} packages present"
		note "packages" "all present"
		return
	fi
	echo "missing: ${missing[*]}"
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || die "run as root (or install sudo) to install: ${missing[*]}"
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -q
	$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
	note "packages" "installed ${#missing[@]} in $(elapsed "$t")"
}

# build DIR CONFIGURE-ARGS...: configure (again if the arguments changed)
# and make.
build() {
	local dir=$1 t
	t=$(date +%s)
	shift
	step "Building in $dir${*:+ (configure $*)}"
	[ ! -f config.status ] ||
		die "the source tree is configured in place; run 'make distclean' here first (builds go to _build/)"
	[ -x configure ] || ./autogen.sh
	mkdir -p "$dir"
	local want=""
	[ $# -eq 0 ] || want=$(printf "'%s' " "$@" | sed 's/ $//')
	if [ ! -f "$dir/config.status" ] || [ "$("$dir/config.status" --config)" != "$want" ]; then
		(cd "$dir" && "$top/configure" -q "$@")
	fi
	make -C "$dir" --no-print-directory -s -j"$jobs"
	note "build $dir" "$(elapsed "$t")"
}

# automake's test summary from a make check log, on one line.
totals() {
	local t
	t=$(grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$1" | sed 's/:  */: /' | tr '\n' ' ')
	echo "${t:-(no test summary: the build or the harness failed)}"
}

# check DIR: make check; the output ends with automake's summary.
failed=0
check() {
	local dir=$1 t rc=0
	t=$(date +%s)
	step "Running the test suite in $dir (make -j$jobs check)"
	make -C "$dir" --no-print-directory -j"$jobs" check 2>&1 | tee "$dir/check.out" || rc=$?
	note "make check in $dir" "$(elapsed "$t")  $(totals "$dir/check.out")"
	# A skipped test must say why, here and not only in its log.
	# ("SKIP: tests/t-foo 12 - what # SKIP why": the line carries the reason)
	local line
	while read -r line; do
		summary+=("    SKIP $line")
	done < <(sed -n 's/^SKIP: //p' "$dir/check.out")
	if [ "$rc" -ne 0 ]; then
		failed=1
		[ -f "$dir/test-suite.log" ] && { echo; echo "---- $dir/test-suite.log ----"; cat "$dir/test-suite.log"; }
	fi
	return 0
}

# distcheck DIR: build the release tarball, then build and test it out of
# tree with a read-only source (its long output goes to DIR/distcheck.out).
distcheck() {
	local dir=$1 t rc=0
	t=$(date +%s)
	step "Checking the release tarball (make distcheck, output in $dir/distcheck.out)"
	make -C "$dir" --no-print-directory -j"$jobs" distcheck >"$dir/distcheck.out" 2>&1 || rc=$?
	grep -A1 -E 'archives ready' "$dir/distcheck.out" || true
	note "make distcheck" "$(elapsed "$t")  $(totals "$dir/distcheck.out")"
	if [ "$rc" -ne 0 ]; then
		failed=1
		echo "make distcheck failed; the end of $dir/distcheck.out:"
		tail -n 40 "$dir/distcheck.out"
	fi
}

print_summary() {
	step "Summary"
	printf '  %s\n' "${summary[@]}"
	printf '  %-28s %s\n' "total" "$(elapsed "$t_start")"
}

case ${1-} in
demo)
	install_missing
	build _build
	step "Running the demo (contrib/demo.sh)"
	contrib/demo.sh "$top/_build"
	;;
test)
	install_missing
	# Both builds share the HAProxy packages the end-to-end tests fetch.
	export SPOOLCAP_TEST_CACHE=$top/tests/.cache
	build _build --enable-werror
	check _build
	if [ "$failed" -eq 0 ]; then
		build _build-asan --enable-sanitizers --enable-werror
		check _build-asan
	else
		note "sanitizer build" "not run: make check failed in _build"
	fi
	if [ "$failed" -eq 0 ]; then
		distcheck _build
	else
		note "make distcheck" "not run: make check failed"
	fi
	print_summary
	if [ "$failed" -ne 0 ]; then
		echo "FAILED: see the test logs above" >&2
		exit 1
	fi
	echo "All tests passed."
	;;
*)
	usage
	;;
esac
