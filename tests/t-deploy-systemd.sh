#!/bin/sh
# t-deploy-systemd.sh -- the systemd unit (contrib/systemd/) (TAP).
#
# Structural checks that need nothing but python3: the settings the
# daemon's behaviour depends on (Type=notify, the reload signal, the user
# and the sysusers.d entry, the state directory = the default spool, a
# stop timeout above the daemon's stop bounds, an fd limit above
# max-connections, every hardening setting). Then the install rule (make
# install-deploy-systemd into a scratch DESTDIR) and, on the installed
# copy, `systemd-analyze verify` (no warning at all) and `systemd-analyze
# security --offline` (exposure at most 2.0). The last two SKIP without
# systemd-analyze; neither needs systemd to be running.
#
# Environment: top_srcdir, top_builddir (set by make check), PYTHON3,
# SPOOLCAPD, MAKE, SPOOLCAP_KEEP_WORK.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
. "$top_srcdir/tests/lib.sh"

py=${PYTHON3:-}
[ -n "$py" ] || py=$(command -v python3) || skip_all "python3 not found (apt-get install python3)"
agent=${SPOOLCAPD:-$top_builddir/src/spoolcapd}
[ -x "$agent" ] || bail "$agent not built"
unit=$top_srcdir/contrib/systemd/spoolcapd.service
sysusers=$top_srcdir/contrib/systemd/spoolcap.sysusers
workdir_new systemd
"$agent" --check >"$work/defaults.conf" 2>&1 || bail "spoolcapd --check failed: $(cat "$work/defaults.conf")"
stop_grace=$(sed -n 's/^#define STOP_GRACE *\([0-9.]*\).*/\1/p' "$top_srcdir/src/spoolcapd.c")
[ -n "$stop_grace" ] || bail "no STOP_GRACE in src/spoolcapd.c"

echo "1..7"

# The structural checks print TAP lines themselves (numbers 1-4).
"$py" - "$unit" "$sysusers" "$work/defaults.conf" "$stop_grace" >"$work/structure.tap" <<'PY'
import re, sys

unit_path, sysusers_path, defaults_path, stop_grace = sys.argv[1:5]
n = 0
def check(cond, what, detail=""):
    global n
    n += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n, what))
    if not cond and detail:
        for l in str(detail).splitlines():
            print("#   " + l)

def parse_unit(path):
    sec, out = None, {}
    for raw in open(path, encoding="utf-8"):
        l = raw.strip()
        if not l or l[0] in "#;":
            continue
        if l.startswith("["):
            sec = l.strip("[]")
            out.setdefault(sec, {})
            continue
        k, _, v = l.partition("=")
        out[sec].setdefault(k.strip(), []).append(v.strip())
    return out

def seconds(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m|h)?", v)
    mult = {"ms": 0.001, None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}
    return float(m.group(1)) * mult[m.group(2)]

def size_or_time(v):
    m = re.fullmatch(r"(\d+)([KMG]?)", v)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]

u = parse_unit(unit_path)
s = u.get("Service", {})
one = lambda k: (s.get(k) or [None])[-1]
d = {}
for l in open(defaults_path, encoding="utf-8"):
    if "=" in l and not l.startswith("#"):
        k, _, v = l.partition("=")
        d.setdefault(k.strip(), v.strip())

# 1. how systemd starts, reloads and supervises it
problems = []
want = {"Type": "notify", "NotifyAccess": "main", "KillSignal": "SIGTERM",
        "Restart": "on-failure", "ExecReload": "/bin/kill -HUP $MAINPID",
        "RestartPreventExitStatus": "1"}
for k, v in want.items():
    if one(k) != v:
        problems.append("%s=%s, want %s" % (k, one(k), v))
es = (one("ExecStart") or "").split()
if es[:1] != ["/usr/sbin/spoolcapd"] or "-c" not in es:
    problems.append("ExecStart=%s: want /usr/sbin/spoolcapd -c FILE" % " ".join(es))
if "WantedBy" not in u.get("Install", {}):
    problems.append("no [Install] WantedBy=")
check(not problems, "start, reload, restart and notify settings", "\n".join(problems))

# 2. the user, its sysusers.d entry, the state directory = default spool
problems = []
users = [l.split() for l in open(sysusers_path, encoding="utf-8")
         if l.strip() and not l.startswith("#")]
if one("User") != "spoolcap" or one("Group") != "spoolcap":
    problems.append("User=%s Group=%s, want spoolcap" % (one("User"), one("Group")))
if "DynamicUser" in s:
    problems.append("DynamicUser= set: the spool needs a stable owner")
if not any(x[0] == "u" and x[1] == one("User") for x in users):
    problems.append("spoolcap.sysusers creates no user %s" % one("User"))
home = [x[-1] for x in users if x[0] == "u"]
spool = d.get("dir")
if "/var/lib/" + (one("StateDirectory") or "?") != spool:
    problems.append("StateDirectory=%s is not the default spool %s" % (one("StateDirectory"), spool))
if home != [spool]:
    problems.append("the user's home %s is not the spool %s" % (home, spool))
if one("StateDirectoryMode") != "0750" or one("UMask") != "0077":
    problems.append("StateDirectoryMode=%s UMask=%s, want 0750 and 0077" %
                    (one("StateDirectoryMode"), one("UMask")))
check(not problems, "user spoolcap (sysusers.d), StateDirectory = default spool %s" % spool,
      "\n".join(problems))

# 3. limits: the stop timeout covers the daemon's stop bounds, the fd
# limit covers max-connections
problems = []
bound = float(stop_grace) + seconds(d["stop-timeout"])
if seconds(one("TimeoutStopSec") or "0") <= bound + 5:
    problems.append("TimeoutStopSec=%s is not above %.0f s (ACK grace %s s + forward "
                    "stop-timeout %s) + 5 s for the last commit" %
                    (one("TimeoutStopSec"), bound, stop_grace, d["stop-timeout"]))
if int(one("LimitNOFILE") or 0) < int(d["max-connections"]) + 64:
    problems.append("LimitNOFILE=%s below max-connections %s + 64" %
                    (one("LimitNOFILE"), d["max-connections"]))
check(not problems, "TimeoutStopSec %s > stop bounds %.0f s; LimitNOFILE %s" %
      (one("TimeoutStopSec"), bound, one("LimitNOFILE")), "\n".join(problems))

# 4. hardening
want = {"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes", "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}
problems = ["%s=%s, want %s" % (k, one(k), v) for k, v in want.items() if one(k) != v]
if "@system-service" not in s.get("SystemCallFilter", []):
    problems.append("SystemCallFilter=@system-service missing")
check(not problems, "hardening settings", "\n".join(problems))
sys.exit(0)
PY
cat "$work/structure.tap"
[ "$(grep -c '^ok' "$work/structure.tap")" -eq 4 ] || tap_failed=1
tap_n=4

# 5. the install rule, as make install runs it
make=${MAKE:-make}
if "$make" -s -C "$top_builddir" install-deploy-systemd DESTDIR="$work/stage" \
	systemdsystemunitdir=/lib/systemd/system sysusersdir=/usr/lib/sysusers.d \
	>"$work/install.out" 2>&1; then
	sbindir=$("$make" -s -C "$top_builddir" --no-print-directory -f Makefile -f - deploy-print-sbindir <<'MK' 2>/dev/null
deploy-print-sbindir:
	@echo $(sbindir)
MK
)
	type=notify
	grep -q '^#define HAVE_SYSTEMD 1' "$top_builddir/config.h" || type='exec'
	iu=$work/stage/lib/systemd/system/spoolcapd.service
	if [ -f "$iu" ] && [ -f "$work/stage/usr/lib/sysusers.d/spoolcap.conf" ] &&
		grep -qx "ExecStart=$sbindir/spoolcapd -c .*/spoolcap/spoolcapd.conf" "$iu" &&
		grep -qx "Type=$type" "$iu"; then
		ok "make install: unit (ExecStart=$sbindir/spoolcapd, Type=$type) and sysusers.d/spoolcap.conf"
	else
		not_ok "make install: unit and sysusers.d/spoolcap.conf"
		diag_file install "$work/install.out"
		[ -f "$iu" ] && diag_file unit "$iu" 200
	fi
else
	not_ok "make install-deploy-systemd"
	diag_file install "$work/install.out"
fi

# 6-7. systemd's own checks, on the installed copy with ExecStart pointing
# at the built daemon (verify wants an executable there).
sa=$(command -v systemd-analyze 2>/dev/null) || true
if [ -z "$sa" ]; then
	echo "ok 6 # SKIP systemd-analyze not found (apt-get install systemd)"
	echo "ok 7 # SKIP systemd-analyze not found (apt-get install systemd)"
	exit 0
fi
mkdir -p "$work/verify"
sed "s|^ExecStart=[^ ]*|ExecStart=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent")|" "$unit" \
	>"$work/verify/spoolcapd.service"
(cd "$work/verify" && "$sa" verify --man=no ./spoolcapd.service) >"$work/verify.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ ! -s "$work/verify.out" ]; then
	ok "systemd-analyze verify: no warning"
else
	not_ok "systemd-analyze verify (status $rc)"
	diag_file verify "$work/verify.out"
fi
(cd "$work/verify" && "$sa" security --offline=true --threshold=20 ./spoolcapd.service) \
	>"$work/security.out" 2>&1
rc=$?
level=$(sed -n 's/.*Overall exposure level for spoolcapd.service: //p' "$work/security.out")
if [ $rc -eq 0 ] && [ -n "$level" ]; then
	ok "systemd-analyze security: exposure $level (at most 2.0)"
elif grep -q -i 'unrecognized option\|unknown option' "$work/security.out"; then
	echo "ok 7 # SKIP this systemd-analyze has no --offline (systemd < 250)"
else
	not_ok "systemd-analyze security: exposure ${level:-?} (at most 2.0)"
	grep '✗' "$work/security.out" | sed 's/^/#   /'
fi
