"""kube_manifests_broken.py — proves the manifest validator can fail.

Copies kube/ into a temporary folder, checks that the copy validates, then
applies one breakage at a time (a schema error, an unknown field, a CEL rule, an
inconsistency between objects, a timeout chain that would cut requests) and
asserts that kube_manifests.validate() reports it with the expected message.
"""
import os
import shutil
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube_manifests  # noqa: E402


def edit(rel, change):
    """A breakage: apply change(obj) to the first object of kube/REL."""
    def apply(kube_dir):
        path = os.path.join(kube_dir, rel)
        with open(path, encoding="utf-8") as f:
            objs = list(yaml.safe_load_all(f))
        change(objs[0])
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump_all(objs, f, sort_keys=False)
    return apply


def container(d):
    return d["spec"]["template"]["spec"]["containers"][0]


def set_env(name, value):
    def change(d):
        for e in container(d)["env"]:
            if e["name"] == name:
                e["value"] = value
    return change


def raw(rel, text):
    def apply(kube_dir):
        with open(os.path.join(kube_dir, rel), "w", encoding="utf-8") as f:
            f.write(text)
    return apply


# (what, breakage, a fragment the validator's report must contain)
BREAKAGES = [
    ("containerPort as a string (Kubernetes schema)",
     edit("10-deployment.yaml", lambda d: container(d)["ports"][0].update(containerPort="8080")),
     "is not of type 'integer'"),
    ("misspelt container field (strict Kubernetes schema)",
     edit("10-deployment.yaml", lambda d: container(d).update(imagePullPolicyy="Never")),
     "imagePullPolicyy"),
    ("unknown apiVersion for a Service",
     edit("20-service.yaml", lambda d: d.update(apiVersion="v2")),
     "Service/whisper-service"),
    ("PDB with a non-integer maxUnavailable percentage typo",
     edit("30-poddisruptionbudget.yaml", lambda d: d["spec"].update(maxUnavailable=1.5)),
     "PodDisruptionBudget/whisper-pdb"),
    ("InterceptorRoute without scalingMetric (CRD: required)",
     edit("40-interceptorroute.yaml", lambda d: d["spec"].pop("scalingMetric")),
     "'scalingMetric' is a required property"),
    ("InterceptorRoute field misspelt (unknown field)",
     edit("40-interceptorroute.yaml", lambda d: d["spec"].update(timeout=d["spec"].pop("timeouts"))),
     "unknown field 'timeout'"),
    ("InterceptorRoute target with port and portName (CEL rule)",
     edit("40-interceptorroute.yaml", lambda d: d["spec"]["target"].update(portName="http")),
     "exactly one of 'port' or 'portName' must be set"),
    ("InterceptorRoute concurrency target 0 (CRD: minimum)",
     edit("40-interceptorroute.yaml", lambda d: d["spec"]["scalingMetric"]["concurrency"].update(targetValue=0)),
     "less than the minimum of 1"),
    ("ScaledObject min > max (CEL rule)",
     edit("50-scaledobject.yaml", lambda d: d["spec"].update(minReplicaCount=9)),
     "minReplicaCount must be less than or equal to maxReplicaCount"),
    ("ScaledObject without triggers (CRD: required)",
     edit("50-scaledobject.yaml", lambda d: d["spec"].pop("triggers")),
     "'triggers' is a required property"),
    ("legacy HTTPScaledObject without scaleTargetRef.service (CRD: required)",
     edit("legacy/httpscaledobject.yaml", lambda d: d["spec"]["scaleTargetRef"].pop("service")),
     "'service' is a required property"),
    ("HPA with an unknown metric type field",
     edit("hpa/horizontalpodautoscaler.yaml", lambda d: d["spec"]["metrics"][0].update(typo=1)),
     "HorizontalPodAutoscaler/whisper"),
    ("not YAML at all",
     raw("20-service.yaml", "kind: Service\n  metadata: [unclosed\n"),
     "YAML"),
    ("Service renamed",
     edit("20-service.yaml", lambda d: d["metadata"].update(name="whisper")),
     "expected 'whisper-service'"),
    ("Service of type ClusterIP (minikube service needs NodePort)",
     edit("20-service.yaml", lambda d: d["spec"].update(type="ClusterIP")),
     "expected 'NodePort'"),
    ("Service selector that matches no pod",
     edit("20-service.yaml", lambda d: d["spec"]["selector"].update({"app.kubernetes.io/name": "whisperx"})),
     "Service: selector does not match"),
    ("Service targetPort that the container does not expose",
     edit("20-service.yaml", lambda d: d["spec"]["ports"][0].update(targetPort="grpc")),
     "is not a container port"),
    ("object in another namespace",
     edit("30-poddisruptionbudget.yaml", lambda d: d["metadata"].update(namespace="default")),
     "not in namespace 'whisper'"),
    ("readiness probe on a path the server does not serve",
     edit("10-deployment.yaml", lambda d: container(d)["readinessProbe"]["httpGet"].update(path="/ready")),
     "expected '/readyz'"),
    ("liveness probe on a route that is not in openapi.json",
     edit("10-deployment.yaml", lambda d: container(d)["livenessProbe"]["httpGet"].update(path="/health")),
     "not in the server's openapi.json"),
    ("ASR_PORT differs from the container port",
     edit("10-deployment.yaml", set_env("ASR_PORT", "9090")),
     "but ASR_PORT='9090'"),
    ("root filesystem writable",
     edit("10-deployment.yaml", lambda d: container(d)["securityContext"].update(readOnlyRootFilesystem=False)),
     "readOnlyRootFilesystem is not set"),
    ("capabilities not dropped",
     edit("10-deployment.yaml", lambda d: container(d)["securityContext"].pop("capabilities")),
     "capabilities.drop does not contain ALL"),
    ("no memory limit",
     edit("10-deployment.yaml", lambda d: container(d)["resources"]["limits"].pop("memory")),
     "resources.limits.memory is not set"),
    ("grace period shorter than preStop + drain",
     edit("10-deployment.yaml", lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=30)),
     "terminationGracePeriodSeconds 30 <"),
    ("drain shorter than the request deadline",
     edit("10-deployment.yaml", set_env("ASR_GRACE", "30")),
     "ASR_GRACE 30 < ASR_REQUEST_TIMEOUT"),
    ("no bound on the recording length",
     edit("10-deployment.yaml", set_env("ASR_MAX_AUDIO_SECONDS", "0")),
     "ASR_MAX_AUDIO_SECONDS must bound"),
    ("interceptor gives up before the server's deadline",
     edit("40-interceptorroute.yaml", lambda d: d["spec"]["timeouts"].update(responseHeader="60s")),
     "responseHeader 60s <= server deadline"),
    ("interceptor's total request timeout shorter than cold start + answer",
     edit("40-interceptorroute.yaml", lambda d: d["spec"]["timeouts"].update(request="10m")),
     "InterceptorRoute request 600s <"),
    ("upload allowed longer than the whole request",
     edit("10-deployment.yaml", set_env("ASR_BODY_TIMEOUT", "900")),
     "ASR_BODY_TIMEOUT 900 >= ASR_REQUEST_TIMEOUT"),
    ("ScaledObject scaling another Deployment",
     edit("50-scaledobject.yaml", lambda d: d["spec"]["scaleTargetRef"].update(name="whisper")),
     "ScaledObject: scaleTargetRef.name is not"),
    ("ScaledObject trigger naming another InterceptorRoute",
     edit("50-scaledobject.yaml", lambda d: d["spec"]["triggers"][0]["metadata"].update(interceptorRoute="asr")),
     "no external-push trigger"),
    ("legacy object out of step with the InterceptorRoute",
     edit("legacy/httpscaledobject.yaml", lambda d: d["spec"]["scalingMetric"]["concurrency"].update(targetValue=7)),
     "scalingMetric differs"),
    ("HPA scaling another Deployment",
     edit("hpa/horizontalpodautoscaler.yaml", lambda d: d["spec"]["scaleTargetRef"].update(name="asr")),
     "HorizontalPodAutoscaler: scaleTargetRef.name"),
]


def main():
    kube_dir, crd_dir, paths = kube_manifests.default_paths()
    versions = kube_manifests.kubernetes_versions()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        baseline = os.path.join(tmp, "baseline")
        shutil.copytree(kube_dir, baseline)
        errors = kube_manifests.validate(baseline, crd_dir, paths, versions)
        if errors:
            print("FAIL the unmodified copy does not validate:\n  " + "\n  ".join(errors))
            return 1
        for i, (what, breakage, expect) in enumerate(BREAKAGES):
            broken = os.path.join(tmp, f"broken{i}")
            shutil.copytree(kube_dir, broken)
            breakage(broken)
            errors = kube_manifests.validate(broken, crd_dir, paths, versions)
            if any(expect in e for e in errors):
                print(f"ok   {what}")
            else:
                failures += 1
                print(f"FAIL {what}: expected an error containing {expect!r}, got: {errors}")
    print(f"{len(BREAKAGES) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
