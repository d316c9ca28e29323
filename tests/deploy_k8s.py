#!/usr/bin/env python3
"""deploy_k8s.py -- offline checks of contrib/kubernetes/ (TAP on stdout).

Parses every manifest with PyYAML and checks what a schema cannot: that
the pieces fit together and match the configuration they carry. The
ConfigMaps hold contrib/haproxy/ byte for byte and a spoolcapd.conf that
`spoolcapd --check` accepts; in each Deployment variant the mounts match
the volumes and the ConfigMap keys, the spool is mounted where
spoolcapd.conf puts it, HAProxy's SPOOLCAP_* addresses match the agent's
and the application's, the probes hit the paths and ports the configs
serve, every container is locked down and has resources, the grace period
covers the stop bounds; the variants differ from deployment.yaml only as
documented; Services, the ServiceMonitor and kustomization.yaml point at
what exists.

Usage: deploy_k8s.py --srcdir DIR [--spoolcapd PATH] [--workdir DIR]
                     [--dump-json FILE]
--dump-json writes every parsed document (as a JSON list of
{"file", "doc"}) for the schema check (deploy_k8s_schema.js).
"""
import argparse
import configparser
import copy
import json
import os
import re
import subprocess
import sys

import yaml

K8S = "contrib/kubernetes"
DEPLOYMENTS = ["deployment.yaml", "deployment-legacy-sidecar.yaml", "deployment-emptydir.yaml"]
API = {"ConfigMap": "v1", "Service": "v1", "PersistentVolumeClaim": "v1",
       "Deployment": "apps/v1", "ServiceMonitor": "monitoring.coreos.com/v1",
       "Kustomization": "kustomize.config.k8s.io/v1beta1"}

n = 0
failed = 0


def check(cond, what, problems=()):
    """One TAP line; problems (strings) are printed as diagnostics."""
    global n, failed
    n += 1
    ok = cond and not problems
    if not ok:
        failed += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n, what))
    for p in problems:
        print("#   " + p)
    sys.stdout.flush()


def skip(what, why):
    global n
    n += 1
    print("ok %d - %s # SKIP %s" % (n, what, why))


def size_bytes(v):
    """Kubernetes quantities (10Gi, 96Mi, 1G) and spoolcapd sizes (4G = GiB)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTP]i?)?", str(v).strip())
    if not m:
        raise ValueError("bad size %r" % v)
    unit = m.group(2) or ""
    power = "KMGTP".index(unit[0]) + 1 if unit else 0
    return float(m.group(1)) * (1024 ** power)


def seconds(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(v).strip())
    return float(m.group(1)) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def ini(text):
    """spoolcapd.conf / --check output: {section: {key: value}}."""
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"),
                                   inline_comment_prefixes=(" ;",), strict=False)
    cp.read_string(text)
    return {s: dict(cp[s]) for s in cp.sections()}


def hostport(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


def differences(a, b, path=""):
    """Paths where two parsed documents differ (at most a few)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += differences(a.get(k), b.get(k), path + "/" + str(k))
        return out[:5]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, "%s/%d" % (path, i))
        return out[:5]
    return [] if a == b else ["differs at %s: %r vs %r" % (path or "/", a, b)]


def pod_containers(dep):
    spec = dep["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}


def port_number(container, port):
    """A probe's or Service's port (a name or a number) as a number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--srcdir", required=True)
    ap.add_argument("--spoolcapd")
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--dump-json")
    a = ap.parse_args()
    kdir = os.path.join(a.srcdir, K8S)
    stop_grace = float(re.search(r"#define STOP_GRACE\s+([0-9.]+)",
                                 open(os.path.join(a.srcdir, "src/spoolcapd.c")).read()).group(1))
    dockerfile = open(os.path.join(a.srcdir, "Dockerfile"), encoding="utf-8").read()

    # 1. every manifest parses; every document names its kind properly
    files = sorted(f for f in os.listdir(kdir) if f.endswith(".yaml"))
    docs, problems = {}, []
    for f in files:
        try:
            docs[f] = [d for d in yaml.safe_load_all(open(os.path.join(kdir, f), encoding="utf-8")) if d]
        except yaml.YAMLError as e:
            problems.append("%s: %s" % (f, e))
            continue
        for d in docs[f]:
            kind = d.get("kind")
            if API.get(kind) != d.get("apiVersion"):
                problems.append("%s: kind %s with apiVersion %s" % (f, kind, d.get("apiVersion")))
            if kind != "Kustomization" and not d.get("metadata", {}).get("name"):
                problems.append("%s: a %s without metadata.name" % (f, kind))
    check(set(DEPLOYMENTS) <= set(docs), "%d manifests parse, kinds and apiVersions known (%s)" %
          (len(files), ", ".join(files)), problems)
    if problems or not set(DEPLOYMENTS) <= set(docs):
        return 1
    if a.dump_json:
        with open(a.dump_json, "w", encoding="utf-8") as out:
            json.dump([{"file": f, "doc": d} for f in files for d in docs[f]], out)

    by_kind = {}
    for f in files:
        for d in docs[f]:
            by_kind.setdefault(d["kind"], {})[d.get("metadata", {}).get("name")] = d
    cms = by_kind.get("ConfigMap", {})

    # 2. the HAProxy ConfigMap carries contrib/haproxy/ unchanged
    problems = []
    hap = cms.get("web-haproxy", {}).get("data", {})
    for key in ("haproxy.cfg", "capture.spoe.conf"):
        want = open(os.path.join(a.srcdir, "contrib/haproxy", key), encoding="utf-8").read()
        if hap.get(key) != want:
            problems.append("web-haproxy %s differs from contrib/haproxy/%s" % (key, key))
    k8s_cfg = hap.get("k8s.cfg", "")
    health_port = re.search(r"^\s*bind\s+\S*:(\d+)\s*$", k8s_cfg, re.M)
    monitor_uri = re.search(r"^\s*monitor-uri\s+(\S+)", k8s_cfg, re.M)
    if not health_port or not monitor_uri:
        problems.append("k8s.cfg has no health frontend (bind :PORT + monitor-uri)")
    check(True, "ConfigMap web-haproxy = contrib/haproxy/ byte for byte, + k8s.cfg", problems)

    # 3. spoolcapd.conf: the values the manifests depend on, and --check
    problems = []
    conf_text = cms.get("web-spoolcapd", {}).get("data", {}).get("spoolcapd.conf", "")
    conf = ini(conf_text)
    agent_listen = conf.get("agent", {}).get("listen", "")
    spool_dir = conf.get("spool", {}).get("dir")
    metrics_listen = conf.get("metrics", {}).get("listen", "")
    max_size = size_bytes(conf.get("spool", {}).get("max-size", "1G"))
    stop_timeout = seconds(conf.get("forward", {}).get("stop-timeout", "5s"))
    if not agent_listen.startswith("127.0.0.1:"):
        problems.append("[agent] listen = %r: the sidecar listens on loopback" % agent_listen)
    if not metrics_listen.startswith("0.0.0.0:"):
        problems.append("[metrics] listen = %r: the kubelet probes the pod's address" % metrics_listen)
    if not conf.get("agent", {}).get("threads", "auto").isdigit():
        problems.append("[agent] threads not set: a container sees every CPU of the node")
    check(bool(spool_dir), "spoolcapd.conf: loopback listener %s, metrics %s, spool %s" %
          (agent_listen, metrics_listen, spool_dir), problems)
    if a.spoolcapd:
        helptext = subprocess.run([a.spoolcapd, "--help"], capture_output=True, text=True).stdout
        path = os.path.join(a.workdir, "pod-spoolcapd.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(conf_text)
        if "metrics" not in helptext:
            skip("spoolcapd --check accepts the pod's spoolcapd.conf",
                 "this spoolcapd has no [metrics] section yet")
        else:
            r = subprocess.run([a.spoolcapd, "-c", path, "--check"], capture_output=True, text=True)
            eff = ini(r.stdout) if r.returncode == 0 else {}
            check(r.returncode == 0 and eff.get("spool", {}).get("dir") == spool_dir,
                  "spoolcapd --check accepts the pod's spoolcapd.conf",
                  [l for l in (r.stderr or "").splitlines()][:5])
    else:
        skip("spoolcapd --check accepts the pod's spoolcapd.conf", "no --spoolcapd given")

    # 4. each Deployment variant
    uid = re.search(r"^USER\s+(\d+):(\d+)", dockerfile, re.M)
    pvcs = by_kind.get("PersistentVolumeClaim", {})
    for f in DEPLOYMENTS:
        dep = docs[f][0]
        spec = dep["spec"]["template"]["spec"]
        cs = pod_containers(dep)
        problems = []
        # labels and containers
        if dep["spec"]["selector"]["matchLabels"].items() - dep["spec"]["template"]["metadata"]["labels"].items():
            problems.append("selector does not match the pod's labels")
        if set(cs) != {"spoolcapd", "haproxy", "app"}:
            problems.append("containers %s, want spoolcapd, haproxy, app" % sorted(cs))
            check(False, f + ": containers", problems)
            continue
        native = any(c["name"] == "spoolcapd" for c in spec.get("initContainers", []))
        if native and cs["spoolcapd"].get("restartPolicy") != "Always":
            problems.append("spoolcapd is an init container without restartPolicy: Always")
        if not native and "restartPolicy" in cs["spoolcapd"]:
            problems.append("restartPolicy on an ordinary container")
        if ("legacy" in f) == native:
            problems.append("native sidecar in the legacy file, or not in the others")
        for c in cs.values():
            if not c.get("image") or ":" not in c["image"].rsplit("/", 1)[-1]:
                problems.append("%s: image %r has no tag" % (c["name"], c.get("image")))
        if cs["spoolcapd"]["image"].split(":")[0] != "spoolcap":
            problems.append("spoolcapd's image is not named spoolcap (kustomization.yaml images:)")
        check(True, "%s: %s spoolcapd, haproxy and app" % (f, "native sidecar" if native else "plain container"),
              problems)

        # volumes, mounts, ConfigMap keys, the spool
        problems = []
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        files_in = {}   # mounted path -> (configmap, key)
        mounted = set()
        for c in cs.values():
            for m in c.get("volumeMounts", []):
                mounted.add(m["name"])
                v = vols.get(m["name"])
                if v is None:
                    problems.append("%s mounts %s: no such volume" % (c["name"], m["name"]))
                    continue
                if "configMap" in v:
                    cm = cms.get(v["configMap"]["name"])
                    if cm is None:
                        problems.append("volume %s: no ConfigMap %s" % (m["name"], v["configMap"]["name"]))
                        continue
                    for it in v["configMap"].get("items", [{"key": k, "path": k} for k in cm["data"]]):
                        if it["key"] not in cm["data"]:
                            problems.append("ConfigMap %s has no key %s" % (cm["metadata"]["name"], it["key"]))
                        files_in[(c["name"], m["mountPath"].rstrip("/") + "/" + it["path"])] = it["key"]
                    if not m.get("readOnly"):
                        problems.append("%s: configuration mount %s is not readOnly" % (c["name"], m["mountPath"]))
        for name in set(vols) - mounted:
            problems.append("volume %s is mounted by no container" % name)
        spool_mounts = [m for m in cs["spoolcapd"].get("volumeMounts", []) if m["mountPath"] == spool_dir]
        if len(spool_mounts) != 1:
            problems.append("spoolcapd mounts nothing at spoolcapd.conf's dir %s" % spool_dir)
        else:
            sv = vols[spool_mounts[0]["name"]]
            if "persistentVolumeClaim" in sv:
                claim = pvcs.get(sv["persistentVolumeClaim"]["claimName"])
                if claim is None:
                    problems.append("no PersistentVolumeClaim %s" % sv["persistentVolumeClaim"]["claimName"])
                else:
                    room = size_bytes(claim["spec"]["resources"]["requests"]["storage"])
                    if room < 2 * max_size + 80 * 2**20:
                        problems.append("claim %s < 2 x max-size + 80 MiB" %
                                        claim["spec"]["resources"]["requests"]["storage"])
                if dep["spec"].get("replicas", 1) != 1 or dep["spec"].get("strategy", {}).get("type") != "Recreate":
                    problems.append("a PVC spool needs replicas 1 and strategy Recreate")
            elif "emptyDir" in sv:
                lim = sv["emptyDir"].get("sizeLimit")
                if not lim or size_bytes(lim) < 2 * max_size + 80 * 2**20:
                    problems.append("emptyDir sizeLimit %s < 2 x max-size + 80 MiB" % lim)
            else:
                problems.append("the spool volume is neither a PVC nor an emptyDir")
        args = cs["spoolcapd"].get("args", [])
        if "-c" not in args or files_in.get(("spoolcapd", args[args.index("-c") + 1])) != "spoolcapd.conf":
            problems.append("spoolcapd's -c %s is not the mounted spoolcapd.conf" % args)
        hargs = cs["haproxy"].get("args", [])
        for i, x in enumerate(hargs):
            if x == "-f" and ("haproxy", hargs[i + 1]) not in files_in:
                problems.append("haproxy -f %s: no such mounted file" % hargs[i + 1])
        check(True, "%s: mounts match volumes and ConfigMap keys; spool at %s" % (f, spool_dir), problems)

        # addresses: HAProxy -> agent, HAProxy -> app, frontend port
        problems = []
        env = {e["name"]: e.get("value") for e in cs["haproxy"].get("env", [])}
        if env.get("SPOOLCAP_AGENT") != agent_listen:
            problems.append("SPOOLCAP_AGENT %s != spoolcapd listen %s" % (env.get("SPOOLCAP_AGENT"), agent_listen))
        if ("haproxy", env.get("SPOOLCAP_SPOE_CONF")) not in files_in:
            problems.append("SPOOLCAP_SPOE_CONF %s is not a mounted file" % env.get("SPOOLCAP_SPOE_CONF"))
        app_args = cs["app"].get("args", [])
        app_port = int(app_args[app_args.index("--port") + 1]) if "--port" in app_args else None
        if hostport(env.get("SPOOLCAP_BACKEND", ":0"))[1] != app_port:
            problems.append("SPOOLCAP_BACKEND %s is not the app's port %s" % (env.get("SPOOLCAP_BACKEND"), app_port))
        if hostport(env.get("SPOOLCAP_FRONTEND", ":0"))[1] != port_number(cs["haproxy"], "http"):
            problems.append("SPOOLCAP_FRONTEND %s is not the port named http" % env.get("SPOOLCAP_FRONTEND"))
        check(True, "%s: HAProxy's SPOOLCAP_* addresses match the agent, the app and its ports" % f, problems)

        # probes
        problems = []
        sc = cs["spoolcapd"]
        want = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/readyz"}
        for probe, path in want.items():
            hg = sc.get(probe, {}).get("httpGet", {})
            if hg.get("path") != path:
                problems.append("spoolcapd %s path %s, want %s" % (probe, hg.get("path"), path))
            if port_number(sc, hg.get("port")) != hostport(metrics_listen)[1]:
                problems.append("spoolcapd %s port %s is not [metrics] listen %s" % (probe, hg.get("port"), metrics_listen))
        for probe in ("livenessProbe", "readinessProbe"):
            hg = cs["haproxy"].get(probe, {}).get("httpGet", {})
            if not health_port or port_number(cs["haproxy"], hg.get("port")) != int(health_port.group(1)):
                problems.append("haproxy %s port %s is not k8s.cfg's health port" % (probe, hg.get("port")))
            if not monitor_uri or hg.get("path") != monitor_uri.group(1):
                problems.append("haproxy %s path %s is not k8s.cfg's monitor-uri" % (probe, hg.get("path")))
        if not any(p.get("name") == "metrics" for p in sc.get("ports", [])):
            problems.append("spoolcapd has no port named metrics (ServiceMonitor)")
        check(True, "%s: probes hit /healthz and /readyz on [metrics] %s, HAProxy's monitor-uri" %
              (f, metrics_listen), problems)

        # security
        problems = []
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problems.append("pod: runAsNonRoot is not true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append("pod: seccompProfile is not RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append("pod: automountServiceAccountToken is not false")
        for c in cs.values():
            s = c.get("securityContext", {})
            if s.get("readOnlyRootFilesystem") is not True:
                problems.append("%s: readOnlyRootFilesystem is not true" % c["name"])
            if s.get("allowPrivilegeEscalation") is not False:
                problems.append("%s: allowPrivilegeEscalation is not false" % c["name"])
            if s.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append("%s: capabilities.drop is not [ALL]" % c["name"])
            if not isinstance(s.get("runAsUser"), int) or s["runAsUser"] == 0:
                problems.append("%s: no numeric non-root runAsUser" % c["name"])
        if not uid:
            problems.append("Dockerfile: no numeric USER uid:gid")
        elif (sc["securityContext"].get("runAsUser"), psc.get("fsGroup")) != (int(uid.group(1)), int(uid.group(2))):
            problems.append("spoolcapd runAsUser/fsGroup %s/%s != the image's USER %s:%s" % (
                sc["securityContext"].get("runAsUser"), psc.get("fsGroup"), uid.group(1), uid.group(2)))
        check(True, "%s: non-root, read-only root, no capabilities, RuntimeDefault seccomp" % f, problems)

        # resources and the grace period
        problems = []
        for c in cs.values():
            r = c.get("resources", {})
            if not {"cpu", "memory"} <= set(r.get("requests", {})):
                problems.append("%s: requests lack cpu or memory" % c["name"])
            if "memory" not in r.get("limits", {}):
                problems.append("%s: no memory limit" % c["name"])
            elif size_bytes(r["limits"]["memory"]) < size_bytes(r["requests"].get("memory", "0")):
                problems.append("%s: memory limit below the request" % c["name"])
        if "cpu" in sc.get("resources", {}).get("limits", {}):
            problems.append("spoolcapd has a CPU limit: throttling delays ACKs")
        if size_bytes(sc["resources"]["limits"]["memory"]) < size_bytes(conf.get("spool", {}).get("queue-max-size", "64M")) + 64 * 2**20:
            problems.append("spoolcapd's memory limit < queue-max-size + 64 MiB")

        def prestop(c):
            cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            return float(cmd[1]) if cmd[:1] == ["sleep"] else 0.0
        bound = stop_grace + stop_timeout + prestop(sc) + (prestop(cs["haproxy"]) if native else 0)
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace < bound + 5:
            problems.append("terminationGracePeriodSeconds %s < stop bounds %.0f s + 5" % (grace, bound))
        check(True, "%s: requests and memory limits; grace %s s > stop bounds %.0f s" % (f, grace, bound), problems)

    # 5. the variants differ from deployment.yaml only as documented
    base = docs["deployment.yaml"][0]

    leg = copy.deepcopy(docs["deployment-legacy-sidecar.yaml"][0])
    want = copy.deepcopy(base)
    ws = want["spec"]["template"]["spec"]
    side = ws.pop("initContainers")[0]
    side.pop("restartPolicy", None)
    ls = leg["spec"]["template"]["spec"]
    got_side = ls["containers"][0]
    got_side.pop("lifecycle", None)
    ws["containers"].insert(0, side)
    check(True, "deployment-legacy-sidecar.yaml = deployment.yaml with spoolcapd an ordinary container (+ preStop)",
          differences(leg, want))
    emp = copy.deepcopy(docs["deployment-emptydir.yaml"][0])
    want = copy.deepcopy(base)
    for d in (emp, want):
        d["spec"].pop("replicas", None)
        d["spec"].pop("strategy", None)
        sp = d["spec"]["template"]["spec"]
        sp["volumes"] = [v for v in sp["volumes"] if v["name"] != "spool"]
        for c in sp["initContainers"]:
            c.get("resources", {}).get("requests", {}).pop("ephemeral-storage", None)
    check(True, "deployment-emptydir.yaml = deployment.yaml with the spool on an emptyDir (+ replicas, strategy)",
          differences(emp, want))

    # 6. Services and the ServiceMonitor
    problems = []
    svcs = by_kind.get("Service", {})
    cs = pod_containers(base)
    labels = base["spec"]["template"]["metadata"]["labels"]
    for name, s in svcs.items():
        if s["spec"]["selector"].items() - labels.items():
            problems.append("Service %s selects no pod of web" % name)
        for p in s["spec"]["ports"]:
            if not any(port_number(c, p["targetPort"]) for c in cs.values()):
                problems.append("Service %s: targetPort %s is no container port" % (name, p["targetPort"]))
    if not any(p["targetPort"] == "http" for s in svcs.values() for p in s["spec"]["ports"]):
        problems.append("no Service for HAProxy's port http")
    sm = next(iter(by_kind.get("ServiceMonitor", {}).values()), None)
    if sm is None:
        problems.append("no ServiceMonitor")
    else:
        sel = sm["spec"]["selector"]["matchLabels"]
        hit = [s for s in svcs.values() if not sel.items() - s["metadata"].get("labels", {}).items()]
        if len(hit) != 1:
            problems.append("the ServiceMonitor selects %d Services, want 1" % len(hit))
        else:
            names = {p.get("name") for p in hit[0]["spec"]["ports"]}
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in names:
                    problems.append("ServiceMonitor port %s not in Service %s" % (ep.get("port"), hit[0]["metadata"]["name"]))
                if ep.get("path", "/metrics") != "/metrics":
                    problems.append("ServiceMonitor path %s" % ep.get("path"))
            if {p.get("name") for p in hit[0]["spec"]["ports"]} != {"metrics"}:
                problems.append("the metrics Service exposes more than the metrics port")
    check(True, "Services select the pod's ports; the ServiceMonitor finds the metrics port", problems)

    # 7. kustomization.yaml
    problems = []
    kz = docs.get("kustomization.yaml", [{}])[0]
    for r in kz.get("resources", []):
        if r not in docs:
            problems.append("kustomization resource %s does not exist" % r)
    if "servicemonitor.yaml" in kz.get("resources", []):
        problems.append("servicemonitor.yaml in resources: it needs the operator's CRDs")
    if not any(i.get("name") == "spoolcap" for i in kz.get("images", [])):
        problems.append("kustomization images: does not name the spoolcap image")
    check(True, "kustomization.yaml lists existing files", problems)

    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
