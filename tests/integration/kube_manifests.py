"""kube_manifests.py — validates kube/, kube/legacy/ and kube/hpa/ offline.

Run as a test (tests/run.sh runs it with the test venv's python) it checks the
repository's manifests; imported (kube_manifests_broken.py) it is the validator
that broken copies must fail. Three layers:

1. Kubernetes objects against the Kubernetes OpenAPI schemas of every version
   that the kubernetes-validate package carries (strict: unknown fields fail,
   as `kubectl apply` does with its default --validate=strict).
2. KEDA objects against the CustomResourceDefinitions in $ASR_SHARED/k8s: the
   served version's openAPIV3Schema, unknown fields (the API server's strict
   field validation) and the x-kubernetes-validations CEL rules.
3. Consistency: namespace, names, selectors, ports, probe paths (against the
   server's own /openapi.json), security settings and the timeout chain.

Usage: python kube_manifests.py [KUBE_DIR]   (default: the repository's kube/)
"""
import copy
import glob
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request

import celpy
import jsonschema
import kubernetes_validate
import yaml

NAMESPACE = "whisper"
SERVICE = "whisper-service"
CRD_FILES = (
    "http.keda.sh_interceptorroutes.yaml",
    "http.keda.sh_httpscaledobjects.yaml",
    "keda.sh_scaledobjects.yaml",
)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_manifests(kube_dir):
    """Returns {relative path: [object, ...]} for kube_dir/*.yaml, legacy/ and hpa/."""
    files = {}
    for sub in ("", "legacy", "hpa"):
        for path in sorted(glob.glob(os.path.join(kube_dir, sub, "*.yaml"))):
            rel = os.path.relpath(path, kube_dir)
            with open(path, encoding="utf-8") as f:
                files[rel] = [d for d in yaml.safe_load_all(f) if d is not None]
    return files


def kubernetes_versions():
    """The Kubernetes versions whose schemas kubernetes-validate ships, e.g. ['1.25.0', ...]."""
    schema_dir = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    versions = {m.group(1) for d in os.listdir(schema_dir) if (m := re.fullmatch(r"v(\d+\.\d+\.\d+)-local-strict", d))}
    return sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


# --- custom resources against the CRDs ------------------------------------------------------

def load_crds(crd_dir):
    """Returns {(apiVersion, kind): openAPIV3Schema} for the served versions of the CRDs."""
    schemas = {}
    for name in CRD_FILES:
        with open(os.path.join(crd_dir, name), encoding="utf-8") as f:
            crd = yaml.safe_load(f)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def _structural_errors(obj, schema, path, cel_env):
    """Unknown fields and CEL rule violations; jsonschema knows neither."""
    errors = []
    if isinstance(obj, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        if props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            for key in obj:
                if key not in props and not (path == "" and key in ("apiVersion", "kind", "metadata")):
                    errors.append(f"{path or '.'}: unknown field {key!r}")
        for key, value in obj.items():
            sub = (props or {}).get(key) or (schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None)
            if sub is not None and key != "metadata":
                errors += _structural_errors(value, sub, f"{path}.{key}", cel_env)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            errors += _structural_errors(item, schema["items"], f"{path}[{i}]", cel_env)
    for rule in schema.get("x-kubernetes-validations", []):
        program = cel_env.program(cel_env.compile(rule["rule"]))
        try:
            ok = bool(program.evaluate({"self": celpy.json_to_cel(obj)}))
        except Exception as e:  # a rule that cannot evaluate is a failure, as on the API server
            ok, rule = False, dict(rule, message=f"{rule.get('message', rule['rule'])} ({e})")
        if not ok:
            errors.append(f"{path or '.'}: {rule.get('message', rule['rule'])}")
    return errors


def validate_custom(obj, crds):
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key not in crds:
        return [f"no served CRD version for apiVersion={key[0]} kind={key[1]}"]
    schema = crds[key]
    errors = [f"{'.'.join(str(p) for p in e.absolute_path) or '.'}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    errors += _structural_errors(obj, schema, "", celpy.Environment())
    meta = obj.get("metadata") or {}
    if not isinstance(meta.get("name"), str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", meta["name"]):
        errors.append("metadata.name: missing or not a DNS subdomain")
    return errors


# --- consistency ------------------------------------------------------------------------------

def _duration_s(text):
    """'330s', '2m', '1m30s' -> seconds (Go duration subset)."""
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", str(text))
    if not m or not any(m.groups()):
        raise ValueError(f"not a duration: {text!r}")
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


def _one(objs, kind, where, errors):
    found = [o for o in objs if o.get("kind") == kind]
    if len(found) != 1:
        errors.append(f"{where}: expected exactly one {kind}, found {len(found)}")
        return None
    return found[0]


def _selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_consistency(files, server_paths):
    errors = []
    base = [o for rel, objs in files.items() if "/" not in rel for o in objs]
    every = [(rel, o) for rel, objs in files.items() for o in objs]

    for rel, o in every:
        name = (o.get("metadata") or {}).get("name")
        if o.get("kind") == "Namespace":
            if name != NAMESPACE:
                errors.append(f"{rel}: Namespace is {name!r}, expected {NAMESPACE!r}")
        elif (o.get("metadata") or {}).get("namespace") != NAMESPACE:
            errors.append(f"{rel}: {o.get('kind')} {name} is not in namespace {NAMESPACE!r}")
    if not base or base[0].get("kind") != "Namespace":
        errors.append("kube/: the Namespace must come first (kubectl applies files in name order)")

    deploy = _one(base, "Deployment", "kube/", errors)
    svc = _one(base, "Service", "kube/", errors)
    pdb = _one(base, "PodDisruptionBudget", "kube/", errors)
    route = _one(base, "InterceptorRoute", "kube/", errors)
    scaled = _one(base, "ScaledObject", "kube/", errors)
    legacy = _one([o for rel, o in every if rel.startswith("legacy/")], "HTTPScaledObject", "kube/legacy/", errors)
    hpa = _one([o for rel, o in every if rel.startswith("hpa/")], "HorizontalPodAutoscaler", "kube/hpa/", errors)
    if None in (deploy, svc, pdb, route, scaled, legacy, hpa):
        return errors

    dname = deploy["metadata"]["name"]
    dspec = deploy["spec"]
    pod = dspec["template"]
    labels = pod["metadata"].get("labels", {})
    if not _selects(dspec["selector"].get("matchLabels"), labels):
        errors.append("Deployment: selector.matchLabels does not match the pod template labels")
    if "replicas" in dspec:
        errors.append("Deployment: spec.replicas is set; the autoscaler owns the replica count")
    containers = pod["spec"]["containers"]
    if len(containers) != 1:
        errors.append(f"Deployment: expected one container, found {len(containers)}")
    c = containers[0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}

    def resolve(port, what):
        number = ports.get(port) if isinstance(port, str) else port
        if number not in ports.values():
            errors.append(f"{what}: port {port!r} is not a container port of the Deployment")
        return number

    if str(resolve("http", "Deployment")) != env.get("ASR_PORT"):
        errors.append(f"Deployment: container port http={ports.get('http')} but ASR_PORT={env.get('ASR_PORT')!r}")

    # Service: NodePort for `minikube service whisper-service`, selecting the pods.
    if svc["metadata"]["name"] != SERVICE:
        errors.append(f"Service is named {svc['metadata']['name']!r}, expected {SERVICE!r}")
    if svc["spec"].get("type") != "NodePort":
        errors.append(f"Service: type is {svc['spec'].get('type')!r}, expected 'NodePort'")
    if not _selects(svc["spec"].get("selector"), labels):
        errors.append("Service: selector does not match the Deployment's pod labels")
    svc_ports = {p["port"]: p for p in svc["spec"]["ports"]}
    for p in svc_ports.values():
        resolve(p.get("targetPort", p["port"]), f"Service port {p['port']}")
    if not _selects(pdb["spec"].get("selector", {}).get("matchLabels"), labels):
        errors.append("PodDisruptionBudget: selector does not match the Deployment's pod labels")

    # Probes: right paths, on the server's port, and served by the server.
    probes = {k: c.get(k) for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    want = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": None}
    for kind, probe in probes.items():
        if not probe or "httpGet" not in probe:
            errors.append(f"Deployment: {kind} missing or not an httpGet probe")
            continue
        path = probe["httpGet"]["path"]
        if want[kind] and path != want[kind]:
            errors.append(f"Deployment: {kind} path is {path!r}, expected {want[kind]!r}")
        if server_paths is not None and path not in server_paths:
            errors.append(f"Deployment: {kind} path {path!r} is not served (not in the server's openapi.json)")
        resolve(probe["httpGet"]["port"], f"Deployment {kind}")

    # Security: non-root, read-only root, no capabilities, sized resources.
    psc, csc = pod["spec"].get("securityContext", {}), c.get("securityContext", {})
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        errors.append("Deployment: runAsNonRoot is not set")
    if not csc.get("readOnlyRootFilesystem"):
        errors.append("Deployment: readOnlyRootFilesystem is not set")
    if csc.get("allowPrivilegeEscalation") is not False:
        errors.append("Deployment: allowPrivilegeEscalation is not false")
    if "ALL" not in (csc.get("capabilities") or {}).get("drop", []):
        errors.append("Deployment: capabilities.drop does not contain ALL")
    if int(env.get("ASR_PORT") or 0) < 1024:
        errors.append("Deployment: ASR_PORT < 1024 cannot be bound with every capability dropped")
    for part in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in (c.get("resources") or {}).get(part, {}):
                errors.append(f"Deployment: resources.{part}.{res} is not set")

    # Timeout chain (docs/deploy.md, "Timeouts").
    try:
        deadline = float(env["ASR_REQUEST_TIMEOUT"])
        drain = float(env["ASR_GRACE"])
        body = float(env["ASR_BODY_TIMEOUT"])
        max_audio = float(env["ASR_MAX_AUDIO_SECONDS"])
        cmd = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command", [])
        if len(cmd) != 2 or not cmd[0].endswith("sleep"):
            raise ValueError("preStop must be exec [/bin/sleep, SECONDS]")
        pre_stop = int(cmd[1])
        tgps = int(pod["spec"]["terminationGracePeriodSeconds"])
        t = route["spec"]["timeouts"]
        header, ready, total = (_duration_s(t[k]) for k in ("responseHeader", "readiness", "request"))
        sp = probes["startupProbe"]
        startup_budget = sp.get("initialDelaySeconds", 0) + sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
        lt = legacy["spec"]["timeouts"]
        chain = [
            (0 < max_audio, "ASR_MAX_AUDIO_SECONDS must bound the longest accepted recording (0 = unbounded)"),
            (0 < deadline, "ASR_REQUEST_TIMEOUT must be set (0 = no deadline)"),
            # The deadline runs from the request's start, upload included.
            (body < deadline, f"ASR_BODY_TIMEOUT {body:g} >= ASR_REQUEST_TIMEOUT {deadline:g}: an upload could outlast the deadline"),
            (drain >= deadline + 5, f"ASR_GRACE {drain:g} < ASR_REQUEST_TIMEOUT {deadline:g} + 5: a request accepted just before SIGTERM could be cut"),
            (pre_stop >= 5, f"preStop sleep {pre_stop}s < 5s: endpoint removal may not have propagated"),
            (tgps >= pre_stop + drain + 5, f"terminationGracePeriodSeconds {tgps} < preStop {pre_stop} + drain {drain:g} + 5"),
            (header > deadline, f"InterceptorRoute responseHeader {header}s <= server deadline {deadline:g}s"),
            (total >= ready + header, f"InterceptorRoute request {total}s < readiness {ready}s + responseHeader {header}s"),
            (startup_budget < ready, f"startup probe budget {startup_budget}s >= interceptor readiness {ready}s"),
            (_duration_s(lt["responseHeader"]) == header, "legacy responseHeader differs from the InterceptorRoute's"),
            (_duration_s(lt["conditionWait"]) == ready, "legacy conditionWait differs from the InterceptorRoute's readiness"),
        ]
        errors += [f"timeouts: {msg}" for ok, msg in chain if not ok]
    except (KeyError, ValueError, TypeError) as e:
        errors.append(f"timeouts: cannot read the timeout chain: {e!r}")

    # Autoscaling objects all point at the same Deployment, Service and port.
    rname = route["metadata"]["name"]
    target = route["spec"]["target"]
    if target.get("service") != SERVICE:
        errors.append(f"InterceptorRoute: target.service {target.get('service')!r} is not {SERVICE!r}")
    if target.get("port") not in svc_ports:
        errors.append(f"InterceptorRoute: target.port {target.get('port')!r} is not a port of {SERVICE}")
    if scaled["spec"]["scaleTargetRef"].get("name") != dname:
        errors.append(f"ScaledObject: scaleTargetRef.name is not {dname!r}")
    triggers = scaled["spec"]["triggers"]
    if not any(t.get("type") == "external-push" and t.get("metadata", {}).get("interceptorRoute") == rname
               and t.get("metadata", {}).get("scalerAddress", "").startswith("keda-add-ons-http-external-scaler.")
               for t in triggers):
        errors.append(f"ScaledObject: no external-push trigger on the add-on's scaler for interceptorRoute {rname!r}")
    lref = legacy["spec"]["scaleTargetRef"]
    if (lref.get("name"), lref.get("service"), lref.get("port")) != (dname, SERVICE, target.get("port")):
        errors.append("HTTPScaledObject: scaleTargetRef does not match the Deployment/Service/port of the InterceptorRoute")
    if sorted(legacy["spec"].get("hosts", [])) != sorted(h for r in route["spec"].get("rules", []) for h in r.get("hosts", [])):
        errors.append("HTTPScaledObject: hosts differ from the InterceptorRoute's")
    if legacy["spec"]["scalingMetric"] != route["spec"]["scalingMetric"]:
        errors.append("HTTPScaledObject: scalingMetric differs from the InterceptorRoute's")
    mn, mx = scaled["spec"].get("minReplicaCount", 0), scaled["spec"].get("maxReplicaCount", 100)
    if (legacy["spec"]["replicas"].get("min"), legacy["spec"]["replicas"].get("max")) != (mn, mx):
        errors.append("HTTPScaledObject: replicas differ from the ScaledObject's")
    if hpa["spec"]["scaleTargetRef"].get("name") != dname:
        errors.append(f"HorizontalPodAutoscaler: scaleTargetRef.name is not {dname!r}")
    if hpa["spec"].get("maxReplicas") != mx:
        errors.append("HorizontalPodAutoscaler: maxReplicas differs from the ScaledObject's")
    if mn == 0 and not route["spec"].get("rules"):
        errors.append("ScaledObject: minReplicaCount 0 with no InterceptorRoute rule would never wake up")
    target_value = route["spec"]["scalingMetric"].get("concurrency", {}).get("targetValue")
    workers = env.get("ASR_WORKERS")
    if target_value is not None and workers is not None and target_value > int(workers) + int(env.get("ASR_QUEUE", 0)):
        errors.append(f"InterceptorRoute: concurrency target {target_value} exceeds what a replica admits (workers + queue)")
    return errors


# --- all together -----------------------------------------------------------------------------

def validate(kube_dir, crd_dir, server_paths, versions=None):
    """Returns a list of error strings (empty: valid) for the manifests under kube_dir."""
    errors = []
    try:
        files = load_manifests(kube_dir)
    except yaml.YAMLError as e:
        return [f"YAML: {e}"]
    if not files:
        return [f"{kube_dir}: no manifests"]
    crds = load_crds(crd_dir)
    versions = versions or kubernetes_versions()
    for rel, objs in files.items():
        for obj in objs:
            if not isinstance(obj, dict):
                errors.append(f"{rel}: not a mapping")
                continue
            what = f"{rel}: {obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            group = str(obj.get("apiVersion", "")).split("/")[0]
            if group.endswith("keda.sh"):
                errors += [f"{what}: {e}" for e in validate_custom(obj, crds)]
                continue
            for v in versions:
                try:
                    kubernetes_validate.validate(copy.deepcopy(obj), v, strict=True)
                except kubernetes_validate.ValidationError as e:
                    errors.append(f"{what}: Kubernetes {v}: {'.'.join(str(p) for p in e.path) or '.'}: {e.message}")
                    break
                except Exception as e:  # unknown kind/apiVersion, or an invalid document
                    errors.append(f"{what}: Kubernetes {v}: {e}")
                    break
    try:
        errors += check_consistency(files, server_paths)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        errors.append(f"consistency: a required field is missing or malformed: {e!r}")
    return errors


def server_openapi_paths(asr_bin, model_dir, timeout_s=60):
    """Starts `asr serve` on a free loopback port and returns the set of paths in its /openapi.json."""
    env = dict(os.environ, ASR_HOST="127.0.0.1", ASR_PORT="0", ASR_MODEL=model_dir, ASR_WORKERS="1")
    proc = subprocess.Popen([asr_bin, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = []
    try:
        deadline = time.monotonic() + timeout_s
        port = None
        # Port 0: the server picks a free port and names it in its "listening" log line.
        while port is None:
            if time.monotonic() > deadline:
                raise RuntimeError("asr serve did not log its listening port in time")
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if not ready:
                continue
            line = proc.stderr.readline()
            if not line:
                proc.wait(timeout=10)
                raise RuntimeError(f"asr serve exited with {proc.returncode}: {b''.join(log).decode(errors='replace')[-2000:]}")
            log.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "listening":
                port = event["port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=10) as r:
            return set(json.load(r)["paths"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def default_paths():
    """(kube dir, CRD dir, server paths) as the test suite sees them."""
    shared = os.environ.get("ASR_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
    asr_bin = os.environ.get("ASR_BIN") or os.path.join(REPO, "build", "asr")
    model = os.environ.get("ASR_TEST_MODEL") or os.path.expanduser("~/.cache/asr/models/tiny.en")
    return os.path.join(REPO, "kube"), os.path.join(shared, "k8s"), server_openapi_paths(asr_bin, model)


def main():
    kube_dir, crd_dir, paths = default_paths()
    if len(sys.argv) > 1:
        kube_dir = sys.argv[1]
    print(f"server routes: {', '.join(sorted(paths))}")
    versions = kubernetes_versions()
    errors = validate(kube_dir, crd_dir, paths, versions)
    n = sum(len(objs) for objs in load_manifests(kube_dir).values())
    for e in errors:
        print(f"ERROR {e}")
    print(f"{n} objects checked against Kubernetes {versions[0]}..{versions[-1]} and the KEDA CRDs: "
          f"{'OK' if not errors else f'{len(errors)} errors'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
