# A throwaway CNCF Distribution registry on loopback, with TLS from a
# throwaway CA, for scripts that push images and read them back by digest.
# Sourced; needs $WORK (a private scratch directory). Sets REGISTRY
# (127.0.0.1:PORT) and REGISTRY_CERTS (a skopeo --cert-dir holding the CA);
# registry_stop kills the server by its PID (also call it from a trap).

REGISTRY_PID=""

registry_start() {
  local dir="$WORK/registry" port
  mkdir -p "$dir/certs" "$dir/data"
  # The CA and a server certificate for 127.0.0.1, both valid for a day.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=scanfleet throwaway registry CA" \
    -keyout "$dir/ca.key" -out "$dir/certs/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$dir/ext.cnf"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/certs/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 1 -extfile "$dir/ext.cnf" -out "$dir/server.crt" 2>/dev/null
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  cat > "$dir/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
  tls: {certificate: $dir/server.crt, key: $dir/server.key}
  headers: {X-Content-Type-Options: [nosniff]}
YAML
  docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY="127.0.0.1:$port"
  REGISTRY_CERTS="$dir/certs"
  local deadline=$((SECONDS + 20))
  until curl -fsS --cacert "$dir/certs/ca.crt" "https://$REGISTRY/v2/" >/dev/null 2>&1; do
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null || ((SECONDS > deadline)); then
      echo "images: the local registry did not start; its log:" >&2
      cat "$dir/registry.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

registry_stop() {
  if [[ -n "$REGISTRY_PID" ]]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
    REGISTRY_PID=""
  fi
}
