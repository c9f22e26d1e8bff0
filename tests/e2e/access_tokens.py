"""Cloudflare Access JWTs minted in the test: RSA key pairs generated here (python
`cryptography`), the JWKS the sandbox serves for them (the shape of the real
`https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`), and tokens good and bad.

RS256 is RSASSA-PKCS1-v1_5 with SHA-256 over `b64url(header).b64url(payload)` (RFC 7518
§3.3); `alg: none` and the HS256-with-the-public-key confusion are the classic attacks
(RFC 8725 §2.1, §3.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TEAM = "e2e-team"
ISSUER = f"https://{TEAM}.cloudflareaccess.com"
AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"
EMAIL = "oncall@example.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


@dataclass
class Key:
    kid: str
    private: rsa.RSAPrivateKey

    @staticmethod
    def generate(kid: str) -> "Key":
        return Key(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict:
        numbers = self.private.public_key().public_numbers()
        return {"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
                "e": b64url(int_bytes(numbers.e)), "n": b64url(int_bytes(numbers.n))}

    def pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def der(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def jwks(*keys: Key) -> dict:
    """The certs document: `keys`, `public_cert` (the current key) and `public_certs`."""
    certs = [{"kid": k.kid, "cert": k.pem().decode()} for k in keys]
    return {"keys": [k.jwk() for k in keys], "public_cert": certs[0], "public_certs": certs}


def claims(**overrides) -> dict:
    """An identity login's claims (application-token page), valid for a minute from now."""
    now = int(time.time())
    doc = {"aud": [AUD], "email": EMAIL, "exp": now + 60, "iat": now, "nbf": now, "iss": ISSUER,
           "type": "app", "identity_nonce": "6ei69kawdKzMIAPF", "sub": "7335d417-61da-459d-899c-0a01c76a2f94",
           "country": "US"}
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def unsigned(header: dict, payload: dict) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"


def rs256(key: Key, payload: dict | None = None, kid: str | None = "same") -> str:
    """A token signed by `key`, labelled `kid` (default: the key's own id; None: no kid)."""
    header = {"alg": "RS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = key.kid if kid == "same" else kid
    head = unsigned(header, payload if payload is not None else claims())
    return f"{head}.{b64url(key.sign(head.encode()))}"


def hs256(secret: bytes, kid: str, payload: dict | None = None) -> str:
    """An HS256 token keyed with `secret` (e.g. the RSA public key's bytes)."""
    head = unsigned({"alg": "HS256", "kid": kid, "typ": "JWT"}, payload or claims())
    return f"{head}.{b64url(hmac.new(secret, head.encode(), hashlib.sha256).digest())}"


def flip_signature(token: str) -> str:
    head, sig = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{b64url(bytes(raw))}"
