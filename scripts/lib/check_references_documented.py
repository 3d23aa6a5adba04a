"""Every Secret and ConfigMap a rendered pod (or a ServiceMonitor's TLS
settings) uses but the manifests do not create is one the operator must
create, so docs/install.md must say how: this fails for each such name
the guide does not mention.

    check_references_documented.py GUIDE.md RENDERED.yaml...
"""

import pathlib
import re
import sys

import yaml

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def references(spec):
    """(kind, name) of every Secret and ConfigMap a pod spec reads."""
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                yield "Secret", source["secret"]["name"]
            if "configMap" in source:
                yield "ConfigMap", source["configMap"]["name"]
    for c in spec.get("initContainers", []) + spec["containers"]:
        for env in c.get("env") or []:
            ref = env.get("valueFrom") or {}
            if "secretKeyRef" in ref:
                yield "Secret", ref["secretKeyRef"]["name"]
            if "configMapKeyRef" in ref:
                yield "ConfigMap", ref["configMapKeyRef"]["name"]
        for env in c.get("envFrom") or []:
            if "secretRef" in env:
                yield "Secret", env["secretRef"]["name"]
            if "configMapRef" in env:
                yield "ConfigMap", env["configMapRef"]["name"]


def monitor_secrets(value):
    """Secrets a ServiceMonitor's TLS settings name (`secret: {name, key}`)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "secret" and isinstance(item, dict) and "name" in item:
                yield "Secret", item["name"]
            else:
                yield from monitor_secrets(item)
    elif isinstance(value, list):
        for item in value:
            yield from monitor_secrets(item)


def main():
    guide_path, *files = sys.argv[1:]
    guide = pathlib.Path(guide_path).read_text()
    missing = []
    checked = set()
    for file in files:
        objs = [o for o in yaml.safe_load_all(pathlib.Path(file).read_text()) if o]
        created = {(o["kind"], o["metadata"]["name"]) for o in objs}
        for obj in objs:
            if obj.get("kind") == "ServiceMonitor":
                refs = monitor_secrets(obj["spec"])
            elif obj.get("kind") in WORKLOAD_KINDS:
                spec = obj["spec"]
                if obj["kind"] == "CronJob":
                    spec = spec["jobTemplate"]["spec"]
                refs = references(spec["template"]["spec"])
            else:
                continue
            for ref in refs:
                if ref in created or ref in checked:
                    continue
                checked.add(ref)
                # The name itself, not a longer name it is part of.
                if not re.search(rf"(?<![\w-]){re.escape(ref[1])}(?![\w-])", guide):
                    missing.append(f"{pathlib.Path(file).name}: {obj['kind']}/{obj['metadata']['name']} "
                                   f"reads {ref[0]} {ref[1]}, which the operator creates, "
                                   f"but {guide_path} does not say how")
    for m in missing:
        print(m)
    print(f"references: {len(checked)} operator-created Secrets and ConfigMaps, "
          f"{len(missing)} undocumented", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
