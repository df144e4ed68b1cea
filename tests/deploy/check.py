#!/usr/bin/env python3
"""tests/deploy/check.py -- structural checks of what deploy/ ships.

    python3 tests/deploy/check.py [BIN_DIR]

Reads deploy/kubernetes.yaml (with kubernetes-secrets.example.yaml),
docker-compose.yml, deploy/haproxy.cfg and Dockerfile, and checks that they fit together and fit the server:
  - every volume a container mounts is declared in its pod, and every
    ConfigMap, Secret (and key), PersistentVolumeClaim and Service they
    name is defined;
  - selectors (Deployment, Service, PodDisruptionBudget) match the pod
    labels; the HPA scales a defined Deployment;
  - probes and health checks ask real endpoints (docs/openapi.yaml) on the
    port the server listens on (its configuration);
  - the pods run as the image's numeric user, non-root, with limits, and
    the termination grace covers preStop plus http.shutdown_grace_ms;
  - configuration keys and HYPERREC_* variables are the server's own
    (`hyperrec --help-config`);
  - the trainer runs `fit` with a file and the Redis stream.
Prints one line per failed check and "N checks, N failed"; exits 1 on a
failure. Needs PyYAML (Debian's python3-yaml, which yamllint brings).
"""
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bin")
checks = 0
failed = 0


def check(ok, what):
    global checks, failed
    checks += 1
    if not ok:
        failed += 1
        print("FAIL " + what)


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


# ------------------------------------------------------------ the server
ref = subprocess.run([os.path.join(BIN, "hyperrec"), "--help-config"],
                     capture_output=True, text=True, check=True).stdout
CONFIG_KEYS = set(re.findall(r"^\| `([a-z_.]+)` \|", ref, re.M))
ENV_NAMES = set(re.findall(r"(HYPERREC_[A-Z0-9_]+)", ref))
ENV_NAMES |= {"HYPERREC_CONFIG"}  # the file itself, read before the rest
ENDPOINTS = set(re.findall(r"^  (/[^:]+):$", read("docs/openapi.yaml"), re.M))
check({"/healthz", "/readyz", "/recommend"} <= ENDPOINTS,
      "docs/openapi.yaml lists /healthz, /readyz and /recommend")
VERSION = re.search(r'-DHR_VERSION=\\"([^\\]+)\\"', read("Makefile")).group(1)
dockerfile = read("Dockerfile")
user = re.search(r"^USER (\d+)(?::(\d+))?$", dockerfile, re.M)
check(user is not None, "Dockerfile: USER is numeric (uid[:gid])")
IMAGE_UID = int(user.group(1)) if user else -1
IMAGE_ENV = dict(re.findall(r"(HYPERREC_[A-Z_]+)=(\S+)", dockerfile))


def config_keys(obj, prefix=""):
    """The dotted keys of a hyperrec.json object ("http.shutdown_grace_ms")."""
    keys = []
    for k, v in obj.items():
        if isinstance(v, dict):
            keys += config_keys(v, prefix + k + ".")
        else:
            keys.append(prefix + k)
    return keys


def listen_port(cfg, env):
    """The port a replica listens on: env > config file > image env."""
    listen = env.get("HYPERREC_LISTEN") or cfg.get("listen") \
        or IMAGE_ENV.get("HYPERREC_LISTEN", "")
    return int(listen.rsplit(":", 1)[1]) if ":" in listen else None


# ------------------------------------------------------------ Kubernetes
# The Secret lives in its own example file (applied once, by hand).
docs = [d for f in ("deploy/kubernetes.yaml",
                    "deploy/kubernetes-secrets.example.yaml")
        for d in yaml.safe_load_all(read(f)) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
K = lambda kind: by_kind.get(kind, {})  # noqa: E731

for kind in ("ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment",
             "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
             "CronJob", "StatefulSet"):
    check(len(K(kind)) > 0, "kubernetes.yaml defines a " + kind)

cm = K("ConfigMap").get("hyperrec-config", {}).get("data", {})
server_cfg = json.loads(cm.get("hyperrec.json", "{}"))
for key in config_keys(server_cfg):
    check(key in CONFIG_KEYS, "ConfigMap hyperrec.json: %s is a server "
          "setting" % key)
grace_ms = server_cfg.get("http", {}).get("shutdown_grace_ms", 5000)


def secret_keys(name):
    s = K("Secret").get(name)
    return None if s is None else set(s.get("stringData", {})) | \
        set(s.get("data", {}))


def pod_specs():
    """(where, pod spec, pod labels, claim templates) of every workload."""
    for kind in ("Deployment", "StatefulSet"):
        for name, w in K(kind).items():
            t = w["spec"]["template"]
            yield ("%s/%s" % (kind, name), t["spec"],
                   t["metadata"].get("labels", {}),
                   [c["metadata"]["name"] for c in
                    w["spec"].get("volumeClaimTemplates", [])], w)
    for name, cj in K("CronJob").items():
        t = cj["spec"]["jobTemplate"]["spec"]["template"]
        yield ("CronJob/" + name, t["spec"], t["metadata"].get("labels", {}),
               [], cj)


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v
                                  for k, v in selector.items())


for where, spec, labels, templates, w in pod_specs():
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    sc = spec.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True, where + ": runAsNonRoot")
    check(isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] > 0,
          where + ": numeric runAsUser")
    for c in spec["containers"]:
        cw = "%s container %s" % (where, c["name"])
        hyperrec = c["image"].split(":")[0].endswith("hyperrec")
        check(":" in c["image"] and not c["image"].endswith(":latest"),
              cw + ": image pinned to a tag (%s)" % c["image"])
        if hyperrec:
            check(c["image"].endswith(":" + VERSION),
                  cw + ": image tag is the version %s" % VERSION)
            check(sc.get("runAsUser") == IMAGE_UID,
                  cw + ": runs as the image's user %d" % IMAGE_UID)
        lim = c.get("resources", {}).get("limits", {})
        check("cpu" in lim and "memory" in lim, cw + ": cpu and memory limits")
        csc = c.get("securityContext", {})
        check(csc.get("allowPrivilegeEscalation") is False,
              cw + ": allowPrivilegeEscalation false")
        for m in c.get("volumeMounts", []):
            ok = m["name"] in volumes or m["name"] in templates
            check(ok, cw + ": mounted volume %s is declared" % m["name"])
            v = volumes.get(m["name"], {})
            if "subPath" in m and "configMap" in v:
                data = K("ConfigMap").get(v["configMap"]["name"], {}) \
                    .get("data", {})
                check(m["subPath"] in data, cw + ": subPath %s is a key of "
                      "ConfigMap %s" % (m["subPath"], v["configMap"]["name"]))
        env = {}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                keys = secret_keys(ref["name"])
                check(keys is not None and ref["key"] in keys,
                      cw + ": env %s: Secret %s has key %s"
                      % (e["name"], ref["name"], ref["key"]))
            if hyperrec:
                check(e["name"] in ENV_NAMES,
                      cw + ": %s is a server variable" % e["name"])
        if hyperrec and "ports" in c:
            ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
            port = listen_port(server_cfg, env)
            check(ports.get("http") == port,
                  cw + ": port http %s is the listen port %s"
                  % (ports.get("http"), port))
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe, {}).get("httpGet")
                check(p is not None, cw + ": has an HTTP " + probe)
                if p:
                    check(p["path"] in ENDPOINTS, cw + ": %s asks %s, an "
                          "endpoint" % (probe, p["path"]))
                    check(ports.get(p["port"], p["port"]) == port,
                          cw + ": %s asks the listen port" % probe)
            check(c.get("readinessProbe", {}).get("httpGet", {})
                  .get("path") == "/readyz", cw + ": readiness is /readyz")
            check(c.get("livenessProbe", {}).get("httpGet", {})
                  .get("path") == "/healthz", cw + ": liveness is /healthz")
            pre = c.get("lifecycle", {}).get("preStop", {})
            cmd = pre.get("exec", {}).get("command", [])
            pre_s = int(cmd[1]) if cmd[:1] == ["sleep"] and len(cmd) > 1 \
                else pre.get("sleep", {}).get("seconds")
            check(pre_s is not None, cw + ": has a preStop pause")
            tg = spec.get("terminationGracePeriodSeconds", 30)
            check(pre_s is not None and tg >= pre_s + grace_ms / 1000 + 1,
                  cw + ": terminationGracePeriodSeconds %s covers preStop "
                  "%s s + shutdown_grace_ms %s" % (tg, pre_s, grace_ms))
    for name, v in volumes.items():
        if "configMap" in v:
            check(v["configMap"]["name"] in K("ConfigMap"),
                  where + ": ConfigMap %s is defined" % v["configMap"]["name"])
        if "secret" in v:
            check(v["secret"]["secretName"] in K("Secret"),
                  where + ": Secret %s is defined" % v["secret"]["secretName"])
        if "persistentVolumeClaim" in v:
            claim = v["persistentVolumeClaim"]["claimName"]
            check(claim in K("PersistentVolumeClaim"),
                  where + ": PersistentVolumeClaim %s is defined" % claim)
    if where.startswith(("Deployment", "StatefulSet")):
        check(matches(w["spec"]["selector"]["matchLabels"], labels),
              where + ": selector matches its pod labels")

dep = K("Deployment").get("hyperrec")
check(dep is not None, "Deployment hyperrec is defined")
if dep:
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(matches(K("Service").get("hyperrec", {}).get("spec", {})
                  .get("selector"), labels),
          "Service hyperrec selects the Deployment's pods")
    svc = K("Service").get("hyperrec", {}).get("spec", {})
    names = [p.get("name") for c in dep["spec"]["template"]["spec"]
             ["containers"] for p in c.get("ports", [])]
    check(all(p["targetPort"] in names for p in svc.get("ports", [])),
          "Service hyperrec targets a named container port")
    check(matches(K("PodDisruptionBudget").get("hyperrec", {}).get("spec", {})
                  .get("selector", {}).get("matchLabels"), labels),
          "PodDisruptionBudget selects the Deployment's pods")
    pvc = K("PersistentVolumeClaim").get("hyperrec-models", {})
    check("ReadWriteMany" in pvc.get("spec", {}).get("accessModes", []),
          "the models claim is ReadWriteMany (one writer, many readers)")
hpa = K("HorizontalPodAutoscaler").get("hyperrec", {}).get("spec", {})
check(hpa.get("scaleTargetRef", {}).get("name") in K("Deployment"),
      "the HPA scales a defined Deployment")
check(any(m.get("resource", {}).get("name") == "cpu"
          for m in hpa.get("metrics", [])), "the HPA scales on CPU")
for name, ss in K("StatefulSet").items():
    check(ss["spec"].get("serviceName") in K("Service"),
          "StatefulSet %s: its serviceName is a Service" % name)
    labels = ss["spec"]["template"]["metadata"]["labels"]
    check(any(matches(s["spec"].get("selector"), labels)
              for s in K("Service").values()),
          "StatefulSet %s: a Service selects it" % name)
redis_host = server_cfg.get("redis", {}).get("host")
check(redis_host in K("Service"),
      "the configured Redis host %s is a Service here" % redis_host)


def trainer_ok(text, where):
    check("hyperrec-train fit" in text, where + ": runs hyperrec-train fit")
    check("--data" in text and "--from-redis" in text,
          where + ": fit reads a file and the Redis stream")
    check("--since" in text, where + ": fit keeps a window (--since)")
    check("/models/default" in text, where + ": writes the served slot")


for name, cj in K("CronJob").items():
    c = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    trainer_ok(" ".join(c.get("command", []) + c.get("args", [])),
               "CronJob/" + name)
    mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] ==
              "/models"]
    check(mounts and not mounts[0].get("readOnly"),
          "CronJob/%s: writes the models volume" % name)

# ------------------------------------------------------- docker compose
compose = yaml.safe_load(read("docker-compose.yml"))
services = compose.get("services", {})
named_volumes = set(compose.get("volumes", {}) or {})
replicas = [n for n, s in services.items()
            if str(s.get("image", "")).split(":")[0] == "hyperrec"
            and "entrypoint" not in s]
check(len(replicas) >= 2, "compose: 2 or more replicas (%d)" % len(replicas))
for name, s in services.items():
    where = "compose service " + name
    image = str(s.get("image", ""))
    check(":" in image and not image.endswith(":latest"),
          where + ": image pinned to a tag (%s)" % image)
    deps = s.get("depends_on", [])
    for d in deps if isinstance(deps, list) else deps.keys():
        check(d in services, where + ": depends on %s, a service" % d)
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith("."):
            if src != "./data":  # the user's own data, made when missing
                check(os.path.exists(os.path.join(ROOT, src)),
                      where + ": %s exists" % src)
        else:
            check(src in named_volumes, where + ": volume %s is declared"
                  % src)
    env = s.get("environment", {})
    if image.split(":")[0] == "hyperrec":
        check(image.endswith(":" + VERSION), where + ": image tag is %s"
              % VERSION)
        for k in env:
            check(k in ENV_NAMES or not k.startswith("HYPERREC_"),
                  where + ": %s is a server variable" % k)
for r in replicas:
    env = services[r].get("environment", {})
    check(str(env.get("HYPERREC_REDIS", "")).split(":")[0] in services,
          "compose %s: HYPERREC_REDIS names a service" % r)
    grace = int(env.get("HYPERREC_HTTP_SHUTDOWN_GRACE_MS", 5000))
    stop = str(services[r].get("stop_grace_period", "10s"))
    check(stop.endswith("s") and int(stop[:-1]) >= grace / 1000 + 1,
          "compose %s: stop_grace_period %s covers shutdown_grace_ms %d"
          % (r, stop, grace))
redis_cmd = " ".join(services.get("redis", {}).get("command", []))
check("--appendonly yes" in redis_cmd, "compose redis: AOF on")
lb = [s for s in services.values() if str(s.get("image", ""))
      .startswith("haproxy")]
check(len(lb) == 1, "compose: one HAProxy")
haproxy = read("deploy/haproxy.cfg")
if lb:
    env = lb[0].get("environment", {})
    for var in re.findall(r'^[^#\n]*"\$\{(\w+)\}"', haproxy, re.M):
        check(var in env, "compose lb: sets %s for haproxy.cfg" % var)
    for var, addr in env.items():
        if var.startswith("HYPERREC_REPLICA_"):
            host, port = addr.split(":")
            check(host in replicas, "compose lb: %s names a replica" % var)
            renv = services.get(host, {}).get("environment", {})
            check(str(listen_port({}, renv)) == port,
                  "compose lb: %s is the replica's listen port" % var)
    check(any("haproxy.cfg" in v for v in lb[0].get("volumes", [])),
          "compose lb: mounts deploy/haproxy.cfg")
trainers = [s for s in services.values() if "entrypoint" in s]
check(len(trainers) == 1, "compose: one trainer")
for t in trainers:
    trainer_ok(" ".join(t.get("command", [])), "compose trainer")
chk = re.search(r"http-check send meth GET uri (\S+)", haproxy)
check(chk is not None and chk.group(1) == "/readyz",
      "haproxy.cfg: health check on /readyz")
servers = re.findall(r"^\s+server (\w+) ", haproxy, re.M)
check(len(servers) >= 2, "haproxy.cfg: 2 or more servers")

print("%d checks, %d failed" % (checks, failed))
sys.exit(1 if failed else 0)
