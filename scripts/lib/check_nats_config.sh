# nats_config_test CONF: runs the real `nats-server -t` (config test) on a
# shipped nats-server configuration. Sourced by scripts/check-deploy; needs
# $ROOT and $WORK.
#
# The file is tested as shipped, with only what the pod provides supplied
# the same way: SERVER_NAME and the four public nkeys as environment
# variables (throwaway, valid keys), and the paths the pod mounts
# (/etc/nats/ and its tls/, /data/) pointed at a scratch copy holding the
# included permissions and a throwaway certificate, because -t opens them.
nats_config_test() {
  local conf="$1" dir
  dir="$(mktemp -d "$WORK/nats-conf.XXXX")"
  mkdir -p "$dir/tls" "$dir/data"
  cp "$ROOT/deploy/nats/scanfleet-authorization.conf" "$dir/"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=scanfleet-nats" -keyout "$dir/tls/tls.key" -out "$dir/tls/tls.crt" 2>/dev/null
  cp "$dir/tls/tls.crt" "$dir/tls/ca.crt"
  sed -e "s#/etc/nats/#$dir/#g" -e "s#\"/data/#\"$dir/data/#g" "$conf" > "$dir/nats-server.conf"
  # Public user nkeys: base32(0xA0 prefix + 32 key bytes + CRC-16/XMODEM, LE).
  local keys
  keys="$(python3 - <<'PY'
import base64, os
def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
for name in ("ADMIN", "INTAKE", "WORKER", "COLLECTOR"):
    raw = bytes([20 << 3]) + os.urandom(32)
    raw += crc16(raw).to_bytes(2, "little")
    print(f"SCANFLEET_{name}_NKEY=" + base64.b32encode(raw).decode().rstrip("="))
PY
)"
  # shellcheck disable=SC2046
  env SERVER_NAME=scanfleet-nats-0 $(echo "$keys") \
    "$ROOT/.tools/venv/bin/nats-server" -t -c "$dir/nats-server.conf"
}
