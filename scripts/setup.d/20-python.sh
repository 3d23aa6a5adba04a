# A project-local venv with the pinned Python tools (nats-server, DSSE verifier).
REQ="$ROOT/scripts/requirements-tools.txt"
if ! stamp_ok venv "$(cat "$REQ")" "$(python3 --version 2>&1)" || [[ ! -x "$TOOLS/venv/bin/python" ]]; then
  log "python venv"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
  stamp_set venv "$(cat "$REQ")" "$(python3 --version 2>&1)"
fi
