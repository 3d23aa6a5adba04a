"""An independent DSSE implementation for interop tests: securesystemslib.

Nothing here imports scanfleet. The Rust tests call it to prove that
envelopes scanfleet signs verify in a third-party verifier, and that
envelopes a third-party signer makes verify in scanfleet.

  dsse_oracle.py keyid PUB.pem
      prints sha256(raw 32-byte Ed25519 key) computed with `cryptography`
  dsse_oracle.py verify PUB.pem KEYID ENVELOPE.json
      exit 0 and "verified KEYID" on success; exit 1 and "rejected: ..." otherwise
  dsse_oracle.py sign PRIVATE.pem KEYID PAYLOAD_TYPE PAYLOAD_FILE
      prints an envelope made by securesystemslib's signer
"""
import copy
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization as ser
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey


def raw_public(pub_pem: bytes) -> bytes:
    key = ser.load_pem_public_key(pub_pem)
    return key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def main(argv):
    cmd = argv[1]
    if cmd == "keyid":
        print(hashlib.sha256(raw_public(open(argv[2], "rb").read())).hexdigest())
        return 0
    if cmd == "verify":
        pub_pem, keyid, path = open(argv[2], "rb").read(), argv[3], argv[4]
        key = SSlibKey.from_crypto(ser.load_pem_public_key(pub_pem), keyid=keyid)
        wire = json.load(open(path))
        try:
            accepted = Envelope.from_dict(copy.deepcopy(wire)).verify([key], 1)
        except VerificationError as e:
            print(f"rejected: {e}")
            return 1
        print("verified " + ",".join(accepted))
        return 0
    if cmd == "sign":
        priv = ser.load_pem_private_key(open(argv[2], "rb").read(), password=None)
        signer = CryptoSigner(priv, SSlibKey.from_crypto(priv.public_key(), keyid=argv[3]))
        payload = open(argv[5], "rb").read()
        env = Envelope(payload=payload, payload_type=argv[4], signatures={})
        env.sign(signer)
        print(json.dumps(env.to_dict()))
        return 0
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
