# The MITRE SAF CLI and inspecjs, pinned by scripts/node/package-lock.json,
# installed into .tools/node (about 450 MB, 35 s cold).
NODE_SRC="$ROOT/scripts/node"
if ! stamp_ok node "$(cat "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json")" \
     || [[ ! -x "$TOOLS/node/node_modules/.bin/saf" ]]; then
  log "npm ci (@mitre/saf, inspecjs)"
  mkdir -p "$TOOLS/node"
  cp "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json" "$TOOLS/node/"
  (cd "$TOOLS/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  stamp_set node "$(cat "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json")"
fi
