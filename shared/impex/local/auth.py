"""The local JWT issuer: an RSA key kept in impex's home, tokens checked the way API Gateway checks them."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LOCAL_ISSUER = "https://impex.local/issuer"
LOCAL_AUDIENCE = "impex-local"
KEY_FILE = "local-jwt-key.pem"


def impex_home() -> Path:
    """Where the local stack keeps its key and downloads: $IMPEX_HOME, else ~/.impex (never the
    current directory, so tokens made anywhere are checked with the same key)."""
    configured = os.environ.get("IMPEX_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".impex"


class Unauthorized(Exception):
    """A missing or bad token: API Gateway answers 401 before any handler runs; the reason says why."""


@dataclass
class LocalIssuer:
    """Signs and verifies RS256 tokens with a key that survives restarts (so tokens do too)."""

    home: Path
    issuer: str = LOCAL_ISSUER
    audience: str = LOCAL_AUDIENCE

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / KEY_FILE
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            self._key = key
        else:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = self._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.write_bytes(pem)
            path.chmod(0o600)

    def token(
        self, tenant: str, *, claim: str = "tenant", ttl_seconds: int = 12 * 3600, subject: str = "dev"
    ) -> str:
        """A token for ``tenant`` that the local API accepts."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_seconds,
            claim: tenant,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "impex-local"})

    def verify(self, header: str | None, *, tenant_claim: str = "tenant") -> dict[str, str]:
        """The claims of a valid ``Authorization: Bearer …`` header, as API Gateway passes them (strings).

        The tenant claim must be a JSON string: API Gateway would pass true or null on as "true" or
        "null", which look like tenant names, so they are refused here rather than taken for one."""
        if not header:
            raise Unauthorized(
                "the request has no Authorization header; send 'Authorization: Bearer <token>'"
            )
        if not header.lower().startswith("bearer "):
            raise Unauthorized("the Authorization header is not 'Bearer <token>'")
        try:
            claims: dict[str, Any] = jwt.decode(
                header[7:].strip(),
                self._key.public_key(),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired; get a new one (impex local token)") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(
                f"the token is not for this API (its audience is not '{self.audience}')"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(f"the token was not issued by '{self.issuer}'") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthorized(f"the token has no '{error.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized(
                "the token's signature is not the local issuer's (made with another key?)"
            ) from None
        except jwt.DecodeError:
            raise Unauthorized("the token is malformed (not a signed JWT)") from None
        except jwt.PyJWTError as error:  # a bad signature, an unknown algorithm, …
            raise Unauthorized(f"the token is not valid: {error}") from None
        tenant = claims.get(tenant_claim)
        if tenant is None and tenant_claim not in claims:
            raise Unauthorized(f"the token has no '{tenant_claim}' claim")
        if not isinstance(tenant, str):
            raise Unauthorized(f"the token's '{tenant_claim}' claim is {type(tenant).__name__}, not a string")
        return {name: _as_claim_string(value) for name, value in claims.items()}


def _as_claim_string(value: Any) -> str:
    # API Gateway hands JWT claims to the integration as strings; arrays become "[a b]".
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    return str(value)
