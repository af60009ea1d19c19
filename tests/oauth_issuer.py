"""A local OpenID issuer for the OAuth2 tests: HTTPS with its own test CA, a discovery document
and a client-credentials token endpoint issuing short-lived HS256 JWTs that Dovecot's ``oauth2``
passdb (local validation) and the tests' SMTP server check. Test code only."""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class TestCa:
    """A CA certificate (PEM file) and a server certificate for 127.0.0.1 it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_ca(folder: Path, name: str) -> TestCa:
    """A fresh CA called ``name`` and a certificate for 127.0.0.1 signed by it, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1")),
                                                         x509.DNSName("localhost")]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))  # fmt: skip
    paths = TestCa(folder / f"{name}-ca.pem", folder / f"{name}-cert.pem", folder / f"{name}.key")
    paths.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))  # fmt: skip
    paths.key_file.chmod(0o644)  # Dovecot reads it as root at start; test data only
    return paths


@dataclass
class Client:
    """A registered client: its secret, the mailbox its tokens are for, their lifetime."""

    secret: str
    email: str
    lifetime: int = 3600
    issued: list[str] = field(default_factory=list)  # every access token handed out
    refresh_lifetime: int | None = None  # delegated: refresh_token_expires_in (None: unsaid)
    refreshes: list[str] = field(default_factory=list)  # every refresh token handed out


@dataclass
class Device:
    """A device-code sign-in waiting for the person (``approve``)."""

    client_id: str
    user_code: str
    scope: str
    approved: bool = False


class OpenIdIssuer:
    """The issuer: ``url`` is the ``oidc_authority``; ``register`` adds a client."""

    def __init__(self, ca: TestCa, port: int) -> None:
        self.key = secrets.token_bytes(32)  # the HS256 key Dovecot and the SMTP sink share
        # MSAL wants a path segment in an authority (as Keycloak's /realms/NAME has).
        self.url = f"https://127.0.0.1:{port}/issuer"
        self.clients: dict[str, Client] = {}
        self.requests: list[str] = []  # paths asked for, in order
        self.public_keys: dict[str, Any] = {}  # service account email -> its public key
        self.devices: dict[str, Device] = {}  # device_code -> the pending sign-in
        self.refresh_tokens: dict[str, tuple[str, float]] = {}  # live: -> (client_id, expiry)
        handler = type("Handler", (_Handler,), {"issuer": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(ca.cert_file, ca.key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def key_base64(self) -> str:
        return base64.b64encode(self.key).decode()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def register(self, email: str, lifetime: int = 3600) -> tuple[str, Client]:
        """A new client id and its record (the secret in ``.secret``)."""
        client_id = f"client-{secrets.token_hex(6)}"
        self.clients[client_id] = Client(f"s3cret-{secrets.token_hex(12)}", email, lifetime)
        return client_id, self.clients[client_id]

    def register_public(
        self, email: str, lifetime: int = 3600, refresh_lifetime: int | None = None
    ) -> tuple[str, Client]:
        """A public client (no secret) for the device-code flow, signing in as ``email``."""
        client_id, client = self.register(email, lifetime)
        client.secret, client.refresh_lifetime = "", refresh_lifetime
        return client_id, client

    def device_authorization(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """RFC 8628's device authorization endpoint: a device code and a code for the person."""
        if form.get("client_id", "") not in self.clients:
            return 400, {"error": "invalid_client", "error_description": "TEST700016: unknown"}
        device = Device(form["client_id"], f"{secrets.randbelow(10**8):08d}",
                        form.get("scope", ""))  # fmt: skip
        device_code = secrets.token_urlsafe(24)
        self.devices[device_code] = device
        return 200, {"device_code": device_code, "user_code": device.user_code,
                     "verification_uri": f"{self.url}/device", "expires_in": 300,
                     "interval": 1, "message": f"Open {self.url}/device and enter the code "
                     f"{device.user_code} to sign in."}  # fmt: skip

    def approve(self, user_code: str) -> None:
        """What the person does in the browser: sign in and consent for this code."""
        for device in self.devices.values():
            if device.user_code == user_code:
                device.approved = True

    def expire_refresh_tokens(self) -> None:
        """Every live refresh token expires now (as after 90 days unused)."""
        self.refresh_tokens.clear()

    def delegated_grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint for the device_code and refresh_token grants of public clients;
        a refresh rotates the refresh token (the old one stops working)."""
        client_id = form.get("client_id", "")
        if form.get("grant_type") == "refresh_token":
            found = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if found is None or found[0] != client_id or found[1] < time.time():
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "TEST700082: The refresh token has expired.",
                }
            return 200, self.issue_delegated(client_id, form.get("scope", ""))
        device = self.devices.get(form.get("device_code", ""))
        if device is None or device.client_id != client_id:
            return 400, {"error": "expired_token", "error_description": "TEST70020: expired"}
        if not device.approved:
            return 400, {"error": "authorization_pending", "error_description": "pending"}
        del self.devices[form["device_code"]]
        return 200, self.issue_delegated(client_id, device.scope)

    def issue_delegated(self, client_id: str, scope: str) -> dict[str, Any]:
        """An access token, an ID token (MSAL keeps the account by it) and a refresh token."""
        client = self.clients[client_id]
        answer = self.issue(client, client_id, client.email, scope)
        now = int(time.time())
        answer["id_token"] = jwt.encode({"iss": self.url, "sub": f"sub-{client.email}",
                                         "aud": client_id, "iat": now, "exp": now + 3600,
                                         "preferred_username": client.email}, self.key,
                                        algorithm="HS256")  # fmt: skip
        refresh = f"rt-{secrets.token_urlsafe(24)}"
        lifetime = client.refresh_lifetime or 90 * 86400
        self.refresh_tokens[refresh] = (client_id, time.time() + lifetime)
        client.refreshes.append(refresh)
        answer["refresh_token"], answer["scope"] = refresh, scope
        if client.refresh_lifetime is not None:
            answer["refresh_token_expires_in"] = client.refresh_lifetime
        return answer

    def register_service_account(self, lifetime: int = 3600) -> tuple[str, str, Client]:
        """A Google-style service account: its client id, its JSON key (the secret the
        pipeline is given) and its record; its tokens are for whichever mailbox it names."""
        client_id = str(secrets.randbelow(10**20))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()  # fmt: skip
        email = f"intake-{client_id[:6]}@project.iam.example.org"
        info = {"type": "service_account", "client_id": client_id, "client_email": email,
                "private_key_id": secrets.token_hex(8), "private_key": pem,
                "token_uri": f"{self.url}/token"}  # fmt: skip
        self.clients[email] = Client(json.dumps(info), "", lifetime)
        self.public_keys[email] = key.public_key()
        return client_id, json.dumps(info), self.clients[email]

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "token_endpoint": f"{self.url}/token",
                "authorization_endpoint": f"{self.url}/authorize",
                "device_authorization_endpoint": f"{self.url}/devicecode",
                "jwks_uri": f"{self.url}/keys", "response_types_supported": ["code"],
                "grant_types_supported": ["client_credentials", DEVICE_GRANT,
                                          "refresh_token"]}  # fmt: skip

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer to a client-credentials request (or a JWT-bearer one)."""
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.delegate(form.get("assertion", ""))
        if form.get("grant_type") in (DEVICE_GRANT, "refresh_token"):
            return self.delegated_grant(form)
        client = self.clients.get(form.get("client_id", ""))
        if client is None or not secrets.compare_digest(client.secret,
                                                        form.get("client_secret", "")):  # fmt: skip
            return 401, {"error": "invalid_client",
                         "error_description": "TEST7000215: Invalid client secret provided.\r\n"
                                              "Trace ID: 0000 Correlation ID: 0000"}  # fmt: skip
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        return 200, self.issue(client, form["client_id"], client.email, form.get("scope", ""))

    def delegate(self, assertion: str) -> tuple[int, dict[str, Any]]:
        """Domain-wide delegation: a service account's signed assertion naming the mailbox."""
        issuer = str(jwt.decode(assertion, options={"verify_signature": False}).get("iss"))
        if issuer not in self.public_keys:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        try:
            # google-auth names Google's endpoint as the audience whatever token_uri says.
            claims = jwt.decode(assertion, self.public_keys[issuer], algorithms=["RS256"],
                                audience=[f"{self.url}/token", GOOGLE_TOKEN_URI])  # fmt: skip
        except jwt.InvalidTokenError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        client = self.clients[issuer]
        return 200, self.issue(client, issuer, str(claims.get("sub")), str(claims.get("scope")))

    def issue(self, client: Client, subject: str, email: str, scope: str) -> dict[str, Any]:
        """A signed token for ``email``, recorded in ``client.issued``."""
        now = int(time.time())
        claims = {"iss": self.url, "sub": subject, "email": email, "iat": now,
                  "exp": now + client.lifetime, "scope": scope}  # fmt: skip
        token = jwt.encode(claims, self.key, algorithm="HS256")
        client.issued.append(token)
        return {"access_token": token, "token_type": "Bearer", "expires_in": client.lifetime}

    def validate(self, token: str, user: str) -> bool:
        """What the SMTP sink checks: signature, expiry and that the token is ``user``'s."""
        try:
            claims = jwt.decode(token, self.key, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return False
        return bool(claims.get("email") == user)


class _Handler(BaseHTTPRequestHandler):
    issuer: OpenIdIssuer

    def do_GET(self) -> None:
        self.issuer.requests.append(self.path)
        if self.path.rstrip("/").endswith("/.well-known/openid-configuration"):
            self._answer(200, self.issuer.discovery())
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        self.issuer.requests.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if self.path == "/issuer/devicecode":
            self._answer(*self.issuer.device_authorization(form))
        elif self.path != "/issuer/token":
            self._answer(404, {"error": "not_found"})
        else:
            self._answer(*self.issuer.grant(form))

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no request lines
        return
