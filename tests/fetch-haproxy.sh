#!/bin/sh
# fetch-haproxy.sh SUITE DEST -- make HAProxy from another Debian suite
# runnable on this machine, for the end-to-end tests' version matrix.
#
# Debian 12 ships HAProxy 2.6; unstable carries 3.2.x and experimental 3.4.x
# (at the time of writing). This downloads that suite's haproxy package and
# the libraries it links against (with their own libc and loader) into DEST,
# without touching the system's apt state, and writes DEST/haproxy: a wrapper
# that runs the binary with its own loader. Nothing is installed.
#
# If DEST/haproxy already works it is reused (no network). Delete DEST to
# pick up a newer package.
#
# Prints the version line ("HAProxy version 3.2.x ...") on success.
# Exit status: 0 ready; 3 the Debian mirror cannot be reached or the suite
# has no haproxy package (callers SKIP); 1 any other failure (callers FAIL).
# shellcheck disable=SC2086 # $O holds several apt options, split on purpose
set -eu

usage() { echo "usage: $0 SUITE DEST   (SUITE: unstable, experimental, trixie, ...)" >&2; exit 1; }
[ $# -eq 2 ] || usage
suite=$1
mkdir -p "$2"
dest=$(cd "$2" && pwd)

# One fetch per DEST at a time (parallel test runs may share a cache).
if [ -z "${SPOOLCAP_FETCH_LOCKED-}" ] && command -v flock >/dev/null 2>&1; then
	SPOOLCAP_FETCH_LOCKED=1 exec flock "$dest/.lock" sh "$0" "$suite" "$dest"
fi

works() { "$dest/haproxy" -v 2>/dev/null | head -n 1 | grep -q '^HAProxy version'; }
if [ -x "$dest/haproxy" ] && works; then
	"$dest/haproxy" -v | head -n 1
	exit 0
fi

unavailable() { echo "fetch-haproxy: $*" >&2; exit 3; }
fail() { echo "fetch-haproxy: $*" >&2; exit 1; }

arch=$(dpkg --print-architecture 2>/dev/null) || fail "dpkg not found: this script needs a Debian system"
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: this script needs a Debian system"
key=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$key" ] || fail "$key missing: install the Debian package debian-archive-keyring"

# The mirror this machine's apt already uses (deb822 or one-line format),
# unless SPOOLCAP_DEBIAN_MIRROR names another.
mirror=${SPOOLCAP_DEBIAN_MIRROR-}
[ -n "$mirror" ] || mirror=$( (grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$2 !~ /security/ {print $2}'
	grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed 's/\[[^]]*\]//' | awk '$2 !~ /security/ {print $2}') | head -n 1)
[ -n "$mirror" ] || fail "no Debian mirror found in /etc/apt/sources.list{,.d}"

st=$dest/.apt
rm -rf "$dest/root" "$st/debs"
mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$st/debs" "$dest/root"
echo "deb [signed-by=$key] $mirror $suite main" >"$st/sources.list"
# experimental holds only what differs from unstable; libraries come from there.
[ "$suite" = experimental ] && echo "deb [signed-by=$key] $mirror unstable main" >>"$st/sources.list"
# Signatures are still checked; only the Release files' expiry date is not,
# since a mirror snapshot may be older than its Valid-Until (seen in CI).
O="-o Acquire::Check-Valid-Until=false -o Dir::Etc::sourcelist=$st/sources.list -o Dir::Etc::sourceparts=- -o Dir::State::Lists=$st/lists
   -o Dir::Cache=$st/cache -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -o APT::Architecture=$arch"
# As root, apt would try to download as _apt, which cannot write into DEST.
[ "$(id -u)" -ne 0 ] || O="$O -o APT::Sandbox::User=root"

# apt-get update reports an unreachable mirror as a warning with status 0 on
# some apt versions, so judge by whether the suite's index arrived.
apt-get $O -o Acquire::Retries=2 update -qq >"$st/update.log" 2>&1 || true
ver=$(apt-cache $O madison haproxy 2>/dev/null | awk -v s="$suite" '$0 ~ " "s"/main" {print $3; exit}')
if [ -z "$ver" ]; then
	if ls "$st/lists/"*"_${suite}_"*Packages* >/dev/null 2>&1; then
		unavailable "Debian $suite currently has no haproxy package"
	fi
	why=$( (grep '^E:' "$st/update.log"; grep '^W:' "$st/update.log" | grep -v unsandboxed) | head -n 1)
	unavailable "cannot use the Debian mirror $mirror for suite $suite: ${why:-no index downloaded}"
fi

# haproxy's direct library dependencies as the package declares them, plus
# what the loader needs; each is fetched at the candidate version.
deps=$(apt-cache $O depends --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances "haproxy=$ver" 2>/dev/null |
	awk '/^ *(Pre)?Depends: lib/ {print $2}' | tr -d '<>' | sort -u)
extra="libc6 libgcc-s1 libstdc++6 libopentracing1 libcrypt1"
cd "$st/debs"
apt-get $O download -qq "haproxy=$ver" >"$st/download.log" 2>&1 ||
	unavailable "cannot download haproxy $ver from $mirror: $(tail -n 1 "$st/download.log")"
# One call is much faster; if some name no longer exists, go one by one.
if ! apt-get $O download -qq $deps $extra >>"$st/download.log" 2>&1; then
	for p in $deps $extra; do
		apt-get $O download -qq "$p" >>"$st/download.log" 2>&1 ||
			echo "fetch-haproxy: note: could not download $p (may not be needed)" >&2
	done
fi
for f in ./*.deb; do dpkg -x "$f" "$dest/root"; done

# The loader and the libraries live in usr/lib/<multiarch triplet>/.
# shellcheck disable=SC2012
ld=$(ls "$dest"/root/usr/lib/*/ld-linux*.so.* 2>/dev/null | head -n 1)
[ -n "$ld" ] || fail "no dynamic loader in the downloaded libc6 (looked in $dest/root/usr/lib/*/)"
L=$(dirname "$ld")
missing=$("$ld" --library-path "$L" --list "$dest/root/usr/sbin/haproxy" 2>&1 | grep 'not found' || true)
[ -z "$missing" ] || fail "libraries missing for haproxy $ver: $missing"
printf '#!/bin/sh\nexec %s --library-path %s %s "$@"\n' "$ld" "$L" "$dest/root/usr/sbin/haproxy" >"$dest/haproxy.tmp"
chmod +x "$dest/haproxy.tmp"
mv "$dest/haproxy.tmp" "$dest/haproxy"
works || fail "the unpacked haproxy $ver does not run: $("$dest/haproxy" -v 2>&1 | head -n 3)"
cd "$dest" && rm -rf "$st/debs" "$st/lists" "$st/cache"   # keep only what runs (about 27 MB)
"$dest/haproxy" -v | head -n 1
