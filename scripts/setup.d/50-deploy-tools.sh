# Tools for deploy/ and the container images (scripts/images,
# scripts/check-deploy):
# - Debian's CNCF Distribution 2.8 (`docker-registry`, the local registry
#   images are pushed to and read back from), skopeo (push, inspect, copy by
#   digest) and umoci (builds OCI image layouts without a daemon). The
#   docker-registry package starts no service here; scripts start their own
#   on loopback.
# - kubernetes-validate and checkov, each pinned in a venv of its own.
apt_install docker-registry skopeo umoci
for tool in kv checkov; do
  case "$tool" in
    kv) req="$ROOT/scripts/requirements-manifests.txt"; bin=kubernetes-validate ;;
    checkov) req="$ROOT/scripts/requirements-checkov.txt"; bin=checkov ;;
  esac
  if ! stamp_ok "venv-$tool" "$(cat "$req")" "$(python3 --version 2>&1)" \
     || [[ ! -x "$TOOLS/venv-$tool/bin/$bin" ]]; then
    log "python venv for $bin"
    python3 -m venv "$TOOLS/venv-$tool"
    "$TOOLS/venv-$tool/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    stamp_set "venv-$tool" "$(cat "$req")" "$(python3 --version 2>&1)"
  fi
done
