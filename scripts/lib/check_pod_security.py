"""Asserts what deploy/ promises about every pod, on the rendered manifests
(what `kubectl apply -k` would send), so a patch in an overlay cannot
quietly undo it:

  - the namespace enforces the "restricted" Pod Security Standard, and every
    pod template meets it: non-root, no privilege escalation, capabilities
    dropped (ALL), seccomp RuntimeDefault, no host namespaces, ports or
    paths, only the volume types the standard allows;
  - beyond the standard: a read-only root filesystem, readiness and
    liveness probes (not for Jobs), CPU and memory requests and limits, and no
    ServiceAccount token in a pod whose ServiceAccount is bound to no role;
  - every workload has a PodDisruptionBudget selecting its pods;
  - the namespace denies all traffic by default (ingress and egress), and
    every pod is selected by a policy that lets some traffic in or out;
  - the worker's termination grace outlasts its drain grace;
  - with --digests, every container image is pinned by digest.

    check_pod_security.py [--digests] RENDERED.yaml...
    check_pod_security.py --self-test RENDERED.yaml

--self-test breaks each promise in turn in a copy of RENDERED.yaml and
fails unless the check names every one.

Prints one line per problem, naming the file, object, container and field,
and exits 1 if there is any.
"""

import pathlib
import sys

import yaml

NAMESPACE = "scanfleet"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# The volume types the restricted standard allows.
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}


def pod_spec(obj):
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def selects(selector, labels):
    """Whether a label selector (matchLabels / matchExpressions) matches."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_container(where, c, pod_sc, digests, long_running, problems):
    sc = c.get("securityContext") or {}
    say = lambda field, what: problems.append(f"{where}: container {c['name']}: {field}: {what}")
    if sc.get("privileged"):
        say("securityContext.privileged", "must not be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        say("securityContext.allowPrivilegeEscalation", "must be false")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        say("securityContext.capabilities.drop", "must include ALL")
    if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
        say("securityContext.capabilities.add", f"only NET_BIND_SERVICE is allowed, not {caps['add']}")
    if sc.get("readOnlyRootFilesystem") is not True:
        say("securityContext.readOnlyRootFilesystem", "must be true")
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    if non_root is not True:
        say("runAsNonRoot", "must be true (container or pod)")
    if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
        say("runAsUser", "must not be 0")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        say("seccompProfile.type", f"must be RuntimeDefault (container or pod), not {seccomp}")
    for port in c.get("ports") or []:
        if port.get("hostPort"):
            say("ports.hostPort", "host ports are not allowed")
    for probe in ("readinessProbe", "livenessProbe") if long_running else ():
        if probe not in c:
            say(probe, "missing")
    resources = c.get("resources") or {}
    for part in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in (resources.get(part) or {}):
                say(f"resources.{part}.{res}", "missing")
    image = c.get("image", "")
    if digests and "@sha256:" not in image:
        say("image", f"{image!r} is not pinned by digest")


def check(files, digests):
    problems = []
    for file in files:
        name = pathlib.Path(file).name
        objs = [o for o in yaml.safe_load_all(pathlib.Path(file).read_text()) if o]
        by_kind = lambda kind: [o for o in objs if o.get("kind") == kind]
        label = lambda o: f"{name}: {o['kind']}/{o['metadata']['name']}"

        namespaces = [o for o in by_kind("Namespace") if o["metadata"]["name"] == NAMESPACE]
        ns_labels = namespaces[0]["metadata"].get("labels", {}) if namespaces else {}
        if ns_labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            problems.append(f"{name}: Namespace/{NAMESPACE}: label pod-security.kubernetes.io/enforce must be restricted")

        # ServiceAccounts some (Cluster)RoleBinding grants: the only ones
        # whose pods may mount a token.
        bound = {
            s["name"]
            for o in by_kind("RoleBinding") + by_kind("ClusterRoleBinding")
            for s in o.get("subjects") or []
            if s.get("kind") == "ServiceAccount"
        }
        policies = by_kind("NetworkPolicy")
        default_deny = [
            p for p in policies
            if p["spec"].get("podSelector") == {}
            and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")
        ]
        if not default_deny:
            problems.append(f"{name}: no default-deny NetworkPolicy (podSelector {{}}, Ingress and Egress, no rules)")
        pdbs = by_kind("PodDisruptionBudget")
        config_maps = {o["metadata"]["name"]: o for o in by_kind("ConfigMap")}

        workloads = [o for o in objs if o.get("kind") in WORKLOAD_KINDS]
        if not workloads:
            problems.append(f"{name}: no workloads rendered")
        for obj in workloads:
            where = label(obj)
            template = pod_spec(obj)
            labels = template["metadata"].get("labels", {})
            spec = template["spec"]
            pod_sc = spec.get("securityContext") or {}
            for field in ("hostNetwork", "hostPID", "hostIPC"):
                if spec.get(field):
                    problems.append(f"{where}: spec.{field} must not be true")
            for volume in spec.get("volumes") or []:
                kinds = set(volume) - {"name"}
                if not kinds <= ALLOWED_VOLUMES:
                    problems.append(f"{where}: volume {volume['name']}: type {sorted(kinds)} is not allowed by the restricted standard")
            account = spec.get("serviceAccountName", "default")
            if account not in bound and spec.get("automountServiceAccountToken") is not False:
                problems.append(f"{where}: ServiceAccount {account} has no role, so automountServiceAccountToken must be false")
            for c in spec.get("initContainers", []) + spec["containers"]:
                # A Job's container runs to completion: nothing to probe.
                check_container(where, c, pod_sc, digests, obj["kind"] not in ("Job", "CronJob"), problems)
            if obj["kind"] in ("Deployment", "StatefulSet") and not any(
                selects(p["spec"]["selector"], labels) for p in pdbs
            ):
                problems.append(f"{where}: no PodDisruptionBudget selects its pods")
            allowing = [
                p for p in policies
                if p not in default_deny
                and selects(p["spec"].get("podSelector") or {}, labels)
                and (p["spec"].get("ingress") or p["spec"].get("egress"))
            ]
            if not allowing:
                problems.append(f"{where}: no NetworkPolicy allows its pods any traffic")
            if obj["metadata"]["name"] == "scanfleet-worker" and obj["kind"] == "Deployment":
                config = yaml.safe_load(config_maps_named(config_maps, "scanfleet-worker")["data"]["worker.yml"])
                drain = config.get("drain_grace_secs")
                grace = spec.get("terminationGracePeriodSeconds", 30)
                if not isinstance(drain, int) or grace <= drain:
                    problems.append(f"{where}: terminationGracePeriodSeconds {grace} must outlast drain_grace_secs {drain}")
    return problems


def config_maps_named(config_maps, prefix):
    """The ConfigMap a generator named `prefix` (with its hash suffix)."""
    for name, obj in config_maps.items():
        if name == prefix or name.rsplit("-", 1)[0] == prefix:
            return obj
    raise SystemExit(f"no ConfigMap {prefix} rendered")


# Self-test: each mutation of a rendered file breaks one promise, and the
# check must name it (so a check that silently passes everything fails).
def _container(objs):
    return next(o for o in objs if o.get("kind") == "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _pod(objs):
    return next(o for o in objs if o.get("kind") == "Deployment")["spec"]["template"]["spec"]


MUTATIONS = [
    ("readOnlyRootFilesystem", lambda o: _container(o)["securityContext"].update(readOnlyRootFilesystem=False)),
    ("allowPrivilegeEscalation", lambda o: _container(o)["securityContext"].pop("allowPrivilegeEscalation")),
    ("capabilities.drop", lambda o: _container(o)["securityContext"]["capabilities"].update(drop=["NET_RAW"])),
    ("runAsNonRoot", lambda o: (_container(o)["securityContext"].pop("runAsNonRoot", None),
                                _pod(o)["securityContext"].pop("runAsNonRoot", None))),
    ("seccompProfile", lambda o: (_container(o)["securityContext"].pop("seccompProfile", None),
                                  _pod(o)["securityContext"].pop("seccompProfile", None))),
    ("hostPID", lambda o: _pod(o).update(hostPID=True)),
    ("hostPath", lambda o: _pod(o)["volumes"].append({"name": "h", "hostPath": {"path": "/"}})),
    ("livenessProbe", lambda o: _container(o).pop("livenessProbe")),
    ("resources.limits.memory", lambda o: _container(o)["resources"]["limits"].pop("memory")),
    ("default-deny", lambda o: o.remove(next(p for p in o if p.get("kind") == "NetworkPolicy"
                                             and p["metadata"]["name"] == "default-deny"))),
    ("PodDisruptionBudget", lambda o: [o.remove(p) for p in [p for p in o if p.get("kind") == "PodDisruptionBudget"]]),
    ("enforce must be restricted", lambda o: next(n for n in o if n.get("kind") == "Namespace")["metadata"]["labels"]
     .update({"pod-security.kubernetes.io/enforce": "baseline"})),
]


def self_test(file):
    import copy
    import tempfile
    objs = [o for o in yaml.safe_load_all(pathlib.Path(file).read_text()) if o]
    failed = 0
    if check([file], False):
        print(f"self-test: {file} itself has problems")
        return 1
    for needle, mutate in MUTATIONS:
        broken = copy.deepcopy(objs)
        mutate(broken)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as tmp:
            yaml.safe_dump_all(broken, tmp)
            tmp.flush()
            problems = check([tmp.name], False)
        if not any(needle in p for p in problems):
            print(f"self-test: breaking {needle} went unnoticed (problems: {problems})")
            failed += 1
    print(f"pod security self-test: {len(MUTATIONS)} mutations, {failed} unnoticed", file=sys.stderr)
    return 1 if failed else 0


def main():
    args = sys.argv[1:]
    if args[:1] == ["--self-test"] and len(args) == 2:
        return self_test(args[1])
    digests = "--digests" in args
    files = [a for a in args if a != "--digests"]
    if not files:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(files, digests)
    for p in problems:
        print(p)
    print(f"pod security: {len(files)} rendered files checked, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
