#!/bin/sh
# t-deploy-image.sh -- the container recipe (Dockerfile) against this build
# (TAP). No container engine is needed: the checks compare the Dockerfile's
# package lists with what dpkg says the built programs and configure's
# libraries come from, on this Debian system.
#
# 1. Two stages on debian:12-slim; the final one runs spoolcapd as a
#    numeric non-root user, with the default spool as its volume, and
#    installs no compiler and no -dev package.
# 2. Every shared library spoolcapd and spoolcap load directly (ELF
#    NEEDED) comes from a package the final stage installs, or from one the
#    base image has (required or essential packages, libc6). libsystemd is
#    exempt: the image
#    is built --without-systemd.
# 3. Every library configure checks for (pkg-config modules, libev's
#    header) comes from a -dev package the build stage installs.
# SKIP where dpkg or readelf is missing.
#
# Environment: top_srcdir, top_builddir (set by make check), PYTHON3.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
. "$top_srcdir/tests/lib.sh"

py=${PYTHON3:-}
[ -n "$py" ] || py=$(command -v python3) || skip_all "python3 not found (apt-get install python3)"
command -v dpkg-query >/dev/null 2>&1 || skip_all "dpkg not found: the package checks need Debian"
command -v readelf >/dev/null 2>&1 || skip_all "readelf not found (apt-get install binutils)"
for p in spoolcapd spoolcap; do
	[ -x "$top_builddir/src/$p" ] || bail "src/$p not built"
done

"$py" - "$top_srcdir" "$top_builddir" <<'PY'
import os, re, subprocess, sys

src, build = sys.argv[1:3]
n = 0
def check(problems, what):
    global n
    n += 1
    print("%s %d - %s" % ("not ok" if problems else "ok", n, what))
    for p in problems:
        print("#   " + p)

def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout

def owner(path):
    """The Debian package that holds a file (following /lib -> /usr/lib)."""
    for p in (path, os.path.realpath(path), path.replace("/usr/lib/", "/lib/", 1)):
        out = run("dpkg-query", "-S", p)
        if out:
            return out.split(":")[0].split(",")[0].strip()
    return None

text = open(os.path.join(src, "Dockerfile"), encoding="utf-8").read()
text = re.sub(r"\\\n", " ", text)            # join continued lines
stages = re.split(r"^FROM\s+", text, flags=re.M)[1:]
def installs(stage):
    pk = set()
    for m in re.finditer(r"apt-get install ([^&]*)", stage):
        pk |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pk
args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))

# 1. structure
problems = []
if len(stages) != 2:
    problems.append("%d stages, want 2 (build, runtime)" % len(stages))
for s in stages:
    base = s.split()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), base)
    if base != "debian:12-slim":
        problems.append("a stage FROM %s, want debian:12-slim" % base)
final = stages[-1] if stages else ""
build_pk, run_pk = installs(stages[0]) if stages else set(), installs(final)
user = re.search(r"^USER\s+(\d+)(?::(\d+))?\s*$", final, re.M)
if not user or user.group(1) == "0":
    problems.append("the final stage has no numeric non-root USER")
bad = sorted(p for p in run_pk if p.endswith("-dev") or p in ("gcc", "make", "autoconf", "automake", "libtool"))
if bad:
    problems.append("the final stage installs build tools: %s" % " ".join(bad))
spool = re.search(r"^dir = (\S+)", run(os.path.join(build, "src/spoolcapd"), "--check"), re.M)
if not spool or '"%s"' % spool.group(1) not in (re.search(r"^VOLUME\s+(.*)$", final, re.M) or [""])[0]:
    problems.append("VOLUME is not the default spool %s" % (spool and spool.group(1)))
if not re.search(r'^ENTRYPOINT\s+\["/usr/sbin/spoolcapd"\]', final, re.M):
    problems.append("ENTRYPOINT is not /usr/sbin/spoolcapd")
check(problems, "Dockerfile: two debian:12-slim stages, final runs as uid %s, no build tools" %
      (user.group(1) if user else "?"))

# 2. runtime libraries
problems, seen = [], []
for prog in ("spoolcapd", "spoolcap"):
    path = os.path.join(build, "src", prog)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", run("readelf", "-d", path))
    where = dict(re.findall(r"^\s*(\S+) => (\S+)", run("ldd", path), re.M))
    for so in needed:
        if so.startswith(("libasan.", "libubsan.", "liblsan.", "libtsan.")):
            continue    # a sanitizer build (--enable-sanitizers), not the image's
        pkg = owner(where.get(so, so))
        if pkg is None:
            problems.append("%s: no package holds %s" % (prog, so))
            continue
        pkg = pkg.split(":")[0]
        prio = run("dpkg-query", "-W", "-f=${Priority} ${Essential}", pkg).split()
        seen.append("%s(%s)" % (so, pkg))
        # In every Debian base image: required/essential packages and the C
        # library under them.
        base = "required" in prio or "yes" in prio or pkg in ("libc6", "libgcc-s1")
        if pkg in run_pk or base or pkg.startswith("libsystemd"):
            continue
        problems.append("%s needs %s from %s, which the final stage does not install" % (prog, so, pkg))
extra = sorted(run_pk - {s.split("(")[1][:-1] for s in seen} - {"ca-certificates"})
check(problems, "runtime packages cover what the programs load: %s" % " ".join(sorted(set(seen))))
if extra:
    print("# installed but not loaded by this build (another build may need them): %s" % " ".join(extra))

# 3. build packages
problems, found = [], []
ac = open(os.path.join(src, "configure.ac"), encoding="utf-8").read()
mods = re.findall(r"PKG_CHECK_MODULES\(\[\w+\],\s*\[([\w.+-]+)", ac)
for mod in mods:
    pcdir = run("pkg-config", "--variable=pcfiledir", mod).strip()
    pkg = owner(os.path.join(pcdir, mod + ".pc")) if pcdir else None
    if pkg is None:
        problems.append("pkg-config module %s: not installed here, cannot check" % mod)
        continue
    pkg = pkg.split(":")[0]
    found.append("%s(%s)" % (mod, pkg))
    if pkg not in build_pk and mod != "libsystemd":
        problems.append("configure checks %s (%s), which the build stage does not install" % (mod, pkg))
for hdr in re.findall(r"AC_CHECK_HEADER\(\[([\w./]+)\]", ac):
    pkg = owner("/usr/include/" + hdr)
    if pkg and pkg.split(":")[0] not in build_pk:
        problems.append("configure checks %s (%s), which the build stage does not install" % (hdr, pkg))
check(problems, "build packages cover configure's libraries: %s" % " ".join(found))
print("1..%d" % n)
sys.exit(0)
PY
