#!/bin/sh
# t-confman.sh -- checks doc/spoolcapd.conf.5 against the daemon (TAP):
# every key of the settings table in src/config.c, and every key that
# spoolcapd --check prints, is described under its own section of the page
# with the right flag and a default; the page describes no key that does
# not exist; every configuration block of its EXAMPLES passes
# spoolcapd --check -c; and man renders the page without a warning (SKIP
# when man or groff is not installed).
#
# Environment: top_srcdir, top_builddir (set by make check), SPOOLCAPD (the
# daemon to run), SPOOLCAP_KEEP_WORK (keep the scratch directory).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
. "$top_srcdir/tests/lib.sh"

daemon=${SPOOLCAPD:-$top_builddir/src/spoolcapd}
page=$top_srcdir/doc/spoolcapd.conf.5
table=$top_srcdir/src/config.c
[ -x "$daemon" ] || skip_all "no $daemon (build it first: make src/spoolcapd)"
[ -r "$page" ] || bail "$page not found"
[ -r "$table" ] || bail "$table not found"
workdir_new confman

# "section key flag" for each entry of the settings table, in its order.
awk '
/^static const struct setting settings\[\]/ { on = 1; next }
on && /^};/ { exit }
on && match($0, /^[ \t]*\{ "[a-z]+",[ \t]*"[a-z0-9-]+",[ \t]*"[a-z0-9-]+"/) {
	s = substr($0, RSTART, RLENGTH)
	gsub(/[{",]/, " ", s)
	split(s, f, " ")
	print f[1], f[2], f[3]
}' "$table" > "$work/table.txt"
cut -d' ' -f1,2 "$work/table.txt" | sort > "$work/table.keys"

# "section key" for each key line of --check output, set or commented.
check_keys() {
	awk '
	/^\[[a-z]+\]$/ { sec = substr($0, 2, length($0) - 2); next }
	sec != "" && match($0, /^(# )?[a-z0-9-]+ = /) {
		k = substr($0, 1, RLENGTH - 3)
		sub(/^# /, "", k)
		print sec, k
	}' "$1" | sort -u
}

# The page's descriptions: "section key flag default" per .TP entry under a
# "THE [section] SECTION" heading (flag/default "-" when missing).
awk '
function flush() {
	if (key != "")
		print sec, key, (flag == "" ? "-" : flag), (dflt ? "yes" : "-")
	key = ""; flag = ""; dflt = 0; want_flag = 0
}
/^\.SH/ {
	flush()
	sec = ""
	if (match($0, /\[[a-z]+\]/))
		sec = substr($0, RSTART + 1, RLENGTH - 2)
	next
}
sec == "" { next }
/^\.TP/ { flush(); next }
/^\.BI [a-z0-9\\-]+ " = "/ && key == "" {
	key = $2
	gsub(/\\-/, "-", key)
	next
}
want_flag && /^\.BR \\-\\-/ {
	flag = $2
	gsub(/\\-/, "-", flag)
	sub(/^--/, "", flag)
	want_flag = 0
	next
}
/^Flag:/ { want_flag = 1; next }
/^Default:/ { dflt = 1 }
END { flush() }' "$page" > "$work/page.txt"
cut -d' ' -f1,2 "$work/page.txt" | sort > "$work/page.keys"

[ "$(wc -l < "$work/table.txt")" -ge 50 ] &&
	ok "parsed $(wc -l < "$work/table.txt") settings from src/config.c" ||
	not_ok "parsed only $(wc -l < "$work/table.txt") settings from src/config.c (table format changed?)"

# --check of a default configuration (an empty file), then of one that sets
# the repeatable [forward] header keys, which --check prints only when set.
: > "$work/empty.conf"
printf 'Bearer 0123456789abcdef\n' > "$work/token"
cat > "$work/headers.conf" <<EOF
[forward]
header = X-Tenant: t1
header-file = Authorization: $work/token
EOF
if "$daemon" --check -c "$work/empty.conf" > "$work/default.out" 2> "$work/default.err" &&
   "$daemon" --check -c "$work/headers.conf" > "$work/headers.out" 2> "$work/headers.err"; then
	ok "spoolcapd --check prints a default configuration"
else
	not_ok "spoolcapd --check prints a default configuration"
	diag_file "--check" "$work/default.err"
	diag_file "--check" "$work/headers.err"
fi
check_keys "$work/default.out" > "$work/default.keys"
check_keys "$work/headers.out" > "$work/headers.keys"
sort -u "$work/default.keys" "$work/headers.keys" > "$work/check.keys"
omitted=$(comm -23 "$work/table.keys" "$work/default.keys" | tr '\n' ',' | sed 's/,$//; s/,/, /g')
[ -z "$omitted" ] || diag "a default --check omits (printed only when set): $omitted"
if cmp -s "$work/check.keys" "$work/table.keys"; then
	ok "the keys --check prints are the settings table's ($(wc -l < "$work/check.keys"))"
else
	not_ok "the keys --check prints are the settings table's"
	comm -3 "$work/check.keys" "$work/table.keys" | sed 's/^\t/  only in the table: /; s/^\([^ ]\)/  only in --check: \1/; s/^/# /'
fi

# Every key under its own section, with its flag and a default.
while read -r sec key flag; do
	got=$(awk -v s="$sec" -v k="$key" '$1 == s && $2 == k' "$work/page.txt")
	if [ -z "$got" ]; then
		not_ok "[$sec] $key is described in spoolcapd.conf.5"
		other=$(awk -v k="$key" '$2 == k { printf " [%s]", $1 }' "$work/page.txt")
		[ -z "$other" ] || diag "described under$other instead"
		continue
	fi
	set -- $got
	if [ "$3" = "$flag" ] && [ "$4" = yes ]; then
		ok "[$sec] $key is described in spoolcapd.conf.5 (--$flag)"
	else
		not_ok "[$sec] $key is described in spoolcapd.conf.5"
		[ "$3" = "$flag" ] || diag "its entry names the flag --$3, the table --$flag"
		[ "$4" = yes ] || diag "its entry has no Default: line"
	fi
done < "$work/table.txt"

extra=$(comm -13 "$work/table.keys" "$work/page.keys" | tr '\n' ',' | sed 's/,$//')
dups=$(uniq -d "$work/page.keys" | tr '\n' ',' | sed 's/,$//')
if [ -z "$extra" ] && [ -z "$dups" ]; then
	ok "spoolcapd.conf.5 describes no unknown key and each key once"
else
	not_ok "spoolcapd.conf.5 describes no unknown key and each key once"
	[ -z "$extra" ] || diag "not in the settings table: $extra"
	[ -z "$dups" ] || diag "described twice: $dups"
fi

# Every section of the table has its heading.
missing=""
for sec in $(cut -d' ' -f1 "$work/table.txt" | sort -u); do
	grep -q "^\.SH \"THE \[$sec\] SECTION\"" "$page" || missing="$missing [$sec]"
done
[ -z "$missing" ] && ok "spoolcapd.conf.5 has a heading for each section" ||
	not_ok "spoolcapd.conf.5 has a heading for each section (missing:$missing)"

# The EXAMPLES' configuration blocks (.EX/.EE holding a [section] line),
# un-roffed, with /etc/spoolcap/ moved under the scratch directory and each
# file they name there created: --check opens them.
mkdir "$work/etc" "$work/examples"
awk -v dir="$work/examples" '
/^\.SH/ { in_ex = ($0 ~ /^\.SH EXAMPLES/); next }
!in_ex { next }
/^\.EX/ { n++; f = dir "/block" n; inblk = 1; next }
/^\.EE/ { inblk = 0; close(f); next }
inblk { print > f }' "$page"
nconf=0
for b in "$work"/examples/block*; do
	[ -f "$b" ] || continue
	grep -q '^\[[a-z]*\]$' "$b" || continue
	nconf=$((nconf + 1))
	sed -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\e/\\/g' \
		-e "s|/etc/spoolcap/|$work/etc/|g" "$b" > "$b.conf"
	for f in $(grep -o "$work/etc/[^ ]*" "$b.conf"); do
		printf '0123456789abcdef0123456789abcdef\n' > "$f"
	done
	if "$daemon" --check -c "$b.conf" > "$b.out" 2> "$b.err"; then
		ok "EXAMPLES configuration $nconf passes spoolcapd --check -c"
	else
		not_ok "EXAMPLES configuration $nconf passes spoolcapd --check -c"
		diag_file "spoolcapd --check" "$b.err"
	fi
done
[ "$nconf" -ge 2 ] && ok "EXAMPLES has $nconf configuration blocks (a minimal and a production one)" ||
	not_ok "EXAMPLES has at least 2 configuration blocks (found $nconf)"

# spoolcapd(8) points to this page.
grep -q '^\.BR spoolcapd\.conf (5)' "$top_srcdir/doc/spoolcapd.8" &&
	ok "spoolcapd.8 refers to spoolcapd.conf(5)" ||
	not_ok "spoolcapd.8 refers to spoolcapd.conf(5)"

# man renders it without a warning.
if command -v man >/dev/null 2>&1 && command -v groff >/dev/null 2>&1; then
	MANWIDTH=80 man --warnings -l "$page" > /dev/null 2> "$work/man.err"
	if [ $? -eq 0 ] && [ ! -s "$work/man.err" ]; then
		ok "man --warnings -l renders spoolcapd.conf.5 without a warning"
	else
		not_ok "man --warnings -l renders spoolcapd.conf.5 without a warning"
		diag_file "man" "$work/man.err"
	fi
else
	ok "man renders spoolcapd.conf.5 # SKIP man or groff is not installed"
fi
# The plan comes last: the number of examples is the page's.
echo "1..$tap_n"
[ "$tap_failed" -eq 0 ]
