"""Validates rendered objects of third-party kinds against their published
CustomResourceDefinitions, as an API server with strict field validation
would: the CRD's openAPIV3Schema (types, enums, required fields, patterns)
through jsonschema, plus every field the schema does not declare (unknown
fields are an error, not silently pruned).

    validate_crd_objects.py SCHEMA_DIR RENDERED.yaml...

Prints one line per object and exits 1 if any is invalid, or if a rendered
object has a kind that neither Kubernetes nor SCHEMA_DIR knows.
"""

import pathlib
import sys

import jsonschema
import yaml

BUILT_IN_GROUPS = {
    "", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io", "autoscaling", "storage.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "node.k8s.io", "certificates.k8s.io",
}


def load_crds(schema_dir):
    crds = {}
    for path in sorted(pathlib.Path(schema_dir).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                key = (f'{spec["group"]}/{version["name"]}', spec["names"]["kind"])
                crds[key] = (version["schema"]["openAPIV3Schema"], path.name)
    return crds


def unknown_fields(value, schema, path):
    """Fields of `value` that `schema` does not declare."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                yield from unknown_fields(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from unknown_fields(item, extra, f"{path}.{key}")
            elif props is not None and extra is not True:
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], f"{path}[{i}]")


def main():
    schema_dir, *files = sys.argv[1:]
    crds = load_crds(schema_dir)
    failed = checked = 0
    for file in files:
        for obj in yaml.safe_load_all(pathlib.Path(file).read_text()):
            if not obj:
                continue
            api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
            group = api.rsplit("/", 1)[0] if "/" in api else ""
            name = f'{kind}/{obj.get("metadata", {}).get("name", "?")}'
            if (api, kind) not in crds:
                if group not in BUILT_IN_GROUPS:
                    print(f"ERROR {file}: {name}: no schema for {api} {kind} in {schema_dir}")
                    failed += 1
                continue
            schema, source = crds[(api, kind)]
            checked += 1
            errors = [
                f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                for e in jsonschema.Draft7Validator(schema).iter_errors(obj)
            ]
            errors += [f"{p[1:]}: unknown field" for p in unknown_fields(obj, schema, "")]
            if errors:
                failed += 1
                for e in errors:
                    print(f"ERROR {file}: {name} ({source}): {e}")
            else:
                print(f"INFO {file}: {name} passed against {source}")
    print(f"{checked} custom objects checked, {failed} invalid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
