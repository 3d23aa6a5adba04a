#!/usr/bin/env bash
# Writes the Kustomize component that pins every scanfleet image by digest:
#   write-image-component.sh DIR REPO VERSION REVISION PROFILE "name=digest ..."
# The overlays include it (components: [../../images]); scripts/images
# calls this after a build, so the rendered manifests name exactly the
# images that were pushed and read back. The debug scanner's digest goes
# to the two places that must agree: the worker's debug image setting and
# the fence's scannerImage variable.
set -euo pipefail
dir="$1" repo="$2" version="$3" revision="$4" profile="$5"
declare -A digest
for pair in $6; do digest[${pair%%=*}]="${pair#*=}"; done
for n in intake worker collector cli debug-scanner nats; do
  [[ "${digest[$n]:-}" == sha256:* ]] || { echo "write-image-component: no digest for $n" >&2; exit 2; }
done
scanner="$repo/debug-scanner@${digest[debug-scanner]}"
mkdir -p "$dir"
cat > "$dir/kustomization.yaml" <<YAML
# Written by scripts/images; do not edit by hand. Re-run scripts/images
# (with --repo for your registry) to change it.
# version $version, revision $revision, $profile binaries
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
images:
  - name: scanfleet/intake
    newName: $repo/intake
    digest: ${digest[intake]}
  - name: scanfleet/worker
    newName: $repo/worker
    digest: ${digest[worker]}
  - name: scanfleet/collector
    newName: $repo/collector
    digest: ${digest[collector]}
  - name: scanfleet/cli
    newName: $repo/cli
    digest: ${digest[cli]}
  - name: scanfleet/nats
    newName: $repo/nats
    digest: ${digest[nats]}
patches:
  # The debug approach's image, by digest: the worker adds it ...
  - target: {kind: Deployment, name: scanfleet-worker}
    patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: scanfleet-worker}
      spec:
        template:
          spec:
            containers:
              - name: worker
                env:
                  - name: SCANFLEET_DEBUG_IMAGE
                    value: "$scanner"
  # ... and the fence admits exactly it (fails the build if variables[0]
  # is not scannerImage).
  - target: {group: admissionregistration.k8s.io, kind: ValidatingAdmissionPolicy, name: scanfleet-worker-fence}
    patch: |-
      - op: test
        path: /spec/variables/0/name
        value: scannerImage
      - op: replace
        path: /spec/variables/0/expression
        value: "'$scanner'"
YAML
