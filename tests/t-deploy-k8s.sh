#!/bin/sh
# t-deploy-k8s.sh -- offline checks of contrib/kubernetes/ (TAP).
#
# 1. tests/deploy_k8s.py (python3-yaml): every manifest parses, and the
#    pieces fit together and match the configuration they carry (mounts,
#    ConfigMap keys, the spool path, addresses, probes, security context,
#    resources, grace period, the variants' documented differences,
#    Services, ServiceMonitor, kustomization.yaml); the pod's
#    spoolcapd.conf passes `spoolcapd --check`.
# 2. `kubectl kustomize` renders kustomization.yaml (SKIP without kubectl).
# 3. tests/deploy_k8s_schema.js: every field of every core object is a
#    field of its API type, with the right JSON type, as the API server's
#    strict validation wants. The types come from the official JavaScript
#    client, @kubernetes/client-node (generated from Kubernetes' OpenAPI),
#    installed once with npm into the test cache. SKIP without node/npm or
#    when the npm registry cannot be reached.
#
# Environment: top_srcdir, top_builddir (set by make check), PYTHON3,
# SPOOLCAPD, SPOOLCAP_TEST_CACHE (shared download cache), SPOOLCAP_KEEP_WORK.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
. "$top_srcdir/tests/lib.sh"

# The @kubernetes/client-node release whose API types are checked against
# (its models cover Kubernetes 1.30, with native sidecars).
K8S_CLIENT=@kubernetes/client-node@0.22.3

py=${PYTHON3:-}
[ -n "$py" ] || py=$(command -v python3) || skip_all "python3 not found (apt-get install python3)"
"$py" -c 'import yaml' 2>/dev/null || skip_all "PyYAML not found (apt-get install python3-yaml)"
agent=${SPOOLCAPD:-$top_builddir/src/spoolcapd}
[ -x "$agent" ] || bail "$agent not built"
workdir_new k8s

# Each part prints its own TAP; renumber into one stream, plan at the end.
total=0
emit() {
	while IFS= read -r line; do
		case $line in
		"ok "*|"not ok "*)
			total=$((total + 1))
			case $line in "not ok "*) tap_failed=$((tap_failed + 1)) ;; esac
			echo "$line" | sed -E "s/^(not ok|ok) [0-9]+/\\1 $total/"
			;;
		1..*) ;;
		*) echo "$line" ;;
		esac
	done
}

"$py" "$top_srcdir/tests/deploy_k8s.py" --srcdir "$top_srcdir" --spoolcapd "$agent" \
	--workdir "$work" --dump-json "$work/docs.json" >"$work/structure.tap" 2>"$work/structure.err"
rc=$?
emit <"$work/structure.tap"
if [ $rc -ne 0 ] && [ ! -s "$work/structure.tap" ]; then
	total=$((total + 1)); tap_failed=$((tap_failed + 1))
	echo "not ok $total - deploy_k8s.py ran (status $rc)"
	diag_file deploy_k8s.py "$work/structure.err"
fi

kubectl=$(command -v kubectl 2>/dev/null) || true
total=$((total + 1))
if [ -z "$kubectl" ]; then
	echo "ok $total - kubectl kustomize contrib/kubernetes # SKIP kubectl not found"
elif "$kubectl" kustomize "$top_srcdir/contrib/kubernetes" >"$work/rendered.yaml" 2>"$work/kustomize.err" &&
	"$py" - "$work/rendered.yaml" <<'PY'
import sys, yaml
kinds = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(open(sys.argv[1])) if d)
want = [("ConfigMap", "web-haproxy"), ("ConfigMap", "web-spoolcapd"), ("Deployment", "web"),
        ("PersistentVolumeClaim", "web-spool"), ("Service", "web"), ("Service", "web-spoolcapd-metrics")]
sys.exit(0 if kinds == want else 1)
PY
then
	echo "ok $total - kubectl kustomize contrib/kubernetes renders the six objects"
else
	tap_failed=$((tap_failed + 1))
	echo "not ok $total - kubectl kustomize contrib/kubernetes"
	diag_file kustomize "$work/kustomize.err"
fi

# The API types: @kubernetes/client-node in the test cache.
cache=${SPOOLCAP_TEST_CACHE:-$top_builddir/tests/.cache}/k8s-client-node
node=$(command -v node 2>/dev/null) || true
npm=$(command -v npm 2>/dev/null) || true
why=""
if [ -z "$node" ]; then
	why="node not found (apt-get install nodejs npm)"
elif [ ! -f "$cache/node_modules/@kubernetes/client-node/package.json" ]; then
	if [ -z "$npm" ]; then
		why="npm not found (apt-get install npm)"
	else
		mkdir -p "$cache"
		# One install per cache at a time (parallel test runs may share it).
		if ! (cd "$cache" && flock .lock timeout 300 "$npm" install --no-audit --no-fund \
			--ignore-scripts --no-save --loglevel=error "$K8S_CLIENT") >"$work/npm.out" 2>&1 ||
			[ ! -f "$cache/node_modules/@kubernetes/client-node/package.json" ]; then
			why="npm could not install $K8S_CLIENT: $(grep -m1 -i 'err' "$work/npm.out" | cut -c1-100)"
		fi
	fi
fi
if [ -n "$why" ]; then
	total=$((total + 1))
	echo "ok $total - manifests match the Kubernetes API types # SKIP $why"
else
	"$node" "$top_srcdir/tests/deploy_k8s_schema.js" "$cache/node_modules" "$work/docs.json" \
		>"$work/schema.tap" 2>"$work/schema.err"
	emit <"$work/schema.tap"
	if ! grep -q '^1\.\.' "$work/schema.tap"; then
		total=$((total + 1)); tap_failed=$((tap_failed + 1))
		echo "not ok $total - deploy_k8s_schema.js ran"
		diag_file deploy_k8s_schema.js "$work/schema.err"
	fi
fi
echo "1..$total"
