"""A sans-IO SASL client: SCRAM-SHA-256, SCRAM-SHA-1 (RFC 5802/7677), PLAIN and ANONYMOUS.

The stream layer sends `initial_response()` in `<auth/>`, passes every `<challenge/>` payload to
`respond()`, and the `<success/>` payload to `verify_success()`. Errors are
`AuthenticationError`s; no message or repr ever contains a password.
"""

from __future__ import annotations

import abc
import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections.abc import Callable, Iterable
from typing import Literal
from xml.etree.ElementTree import Element

from .errors import AuthenticationError

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"

# Far above any sane server setting (4096-100000); stops a hostile server from burning our CPU.
DEFAULT_MAX_ITERATIONS = 1_000_000

_GS2_HEADER = b"n,,"  # no channel binding, no authzid


class SaslprepError(ValueError):
    """A string that SASLprep (RFC 4013) refuses. The message never quotes the string."""


_PROHIBITED: tuple[tuple[Callable[[str], bool], str], ...] = (
    (stringprep.in_table_c12, "non-ASCII space"),
    (stringprep.in_table_c21, "ASCII control character"),
    (stringprep.in_table_c22, "non-ASCII control character"),
    (stringprep.in_table_c3, "private use character"),
    (stringprep.in_table_c4, "non-character code point"),
    (stringprep.in_table_c5, "surrogate code point"),
    (stringprep.in_table_c6, "character inappropriate for plain text"),
    (stringprep.in_table_c7, "character inappropriate for canonical representation"),
    (stringprep.in_table_c8, "change-display-property or deprecated character"),
    (stringprep.in_table_c9, "tagging character"),
)


def saslprep(text: str, *, allow_unassigned: bool = True) -> str:
    """Prepare `text` with the SASLprep profile of stringprep (RFC 4013).

    `allow_unassigned=True` treats it as a query string, as SCRAM's client side does.
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in text
        if not stringprep.in_table_b1(char)
    )
    # stringprep is defined on Unicode 3.2, hence the pinned database.
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for char in prepared:
        for in_table, description in _PROHIBITED:
            if in_table(char):
                raise SaslprepError(f"prohibited {description}")
        if not allow_unassigned and stringprep.in_table_a1(char):
            raise SaslprepError("unassigned code point")
    _check_bidi(prepared)
    return prepared


def _check_bidi(text: str) -> None:
    # RFC 3454 §6: right-to-left text may not mix with left-to-right, and must begin and end RTL.
    if not any(stringprep.in_table_d1(char) for char in text):
        return
    if any(stringprep.in_table_d2(char) for char in text):
        raise SaslprepError("mixes right-to-left and left-to-right characters")
    if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
        raise SaslprepError("right-to-left text must start and end with a right-to-left character")


class SaslMechanism(abc.ABC):
    """One client-side SASL exchange. Create a fresh instance per authentication attempt."""

    name: str

    @abc.abstractmethod
    def initial_response(self) -> bytes | None:
        """Payload of `<auth/>`; None sends no initial response (b"" sends an empty one)."""

    @abc.abstractmethod
    def respond(self, challenge: bytes) -> bytes:
        """Answer a `<challenge/>` payload."""

    @abc.abstractmethod
    def verify_success(self, additional_data: bytes | None) -> None:
        """Check the `<success/>` payload; raise AuthenticationError if the server is untrusted."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AnonymousMechanism(SaslMechanism):
    """RFC 4505; sends no trace information."""

    name = "ANONYMOUS"

    def initial_response(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        return b""

    def verify_success(self, additional_data: bytes | None) -> None:
        return None


class PlainMechanism(SaslMechanism):
    """RFC 4616. The server applies SASLprep, so the strings are sent as given."""

    name = "PLAIN"

    def __init__(self, username: str, password: str, authzid: str | None = None) -> None:
        for label, value in (("username", username), ("password", password),
                             ("authzid", authzid or "")):
            if "\x00" in value:
                raise AuthenticationError("invalid-credentials", f"{label} contains a NUL byte")
        self.username = username
        self.authzid = authzid
        self._password = password

    def initial_response(self) -> bytes | None:
        return f"{self.authzid or ''}\x00{self.username}\x00{self._password}".encode()

    def respond(self, challenge: bytes) -> bytes:
        raise AuthenticationError("unexpected-challenge", "PLAIN takes no challenge")

    def verify_success(self, additional_data: bytes | None) -> None:
        return None

    def __repr__(self) -> str:
        return f"PlainMechanism(username={self.username!r}, authzid={self.authzid!r})"


_SCRAM_HASHES: dict[str, str] = {"sha1": "SCRAM-SHA-1", "sha256": "SCRAM-SHA-256"}


class ScramMechanism(SaslMechanism):
    """SCRAM-SHA-1 / SCRAM-SHA-256 without channel binding (RFC 5802, RFC 7677)."""

    def __init__(
        self,
        hash_name: Literal["sha1", "sha256"],
        username: str,
        password: str,
        nonce: str | None = None,
        *,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
    ) -> None:
        if hash_name not in _SCRAM_HASHES:
            raise ValueError(f"unsupported SCRAM hash {hash_name!r}")
        self.name = _SCRAM_HASHES[hash_name]
        self.hash_name = hash_name
        self.username = username
        self.max_iterations = max_iterations
        try:
            prepared_username = saslprep(username)
        except SaslprepError as exc:
            raise AuthenticationError("invalid-credentials", f"username: {exc}") from None
        try:
            prepared_password = saslprep(password)
        except SaslprepError as exc:
            # `from None`: the password must not travel along in a chained exception either.
            raise AuthenticationError("invalid-credentials", f"password: {exc}") from None
        if not prepared_username or not prepared_password:
            raise AuthenticationError("invalid-credentials", "empty username or password")
        self._password: bytes | None = prepared_password.encode()
        self._nonce = nonce if nonce is not None else secrets.token_urlsafe(24)
        if not self._nonce or not _is_printable(self._nonce):
            raise ValueError("a SCRAM nonce must be printable ASCII without ','")
        escaped = prepared_username.replace("=", "=3D").replace(",", "=2C")
        self._client_first_bare = f"n={escaped},r={self._nonce}".encode()
        self._expected_server_signature: bytes | None = None
        self._state = "initial"

    def initial_response(self) -> bytes | None:
        if self._state != "initial":
            raise AuthenticationError("unexpected-challenge", "SCRAM exchange already started")
        self._state = "sent-first"
        return _GS2_HEADER + self._client_first_bare

    def respond(self, challenge: bytes) -> bytes:
        if self._state == "sent-first":
            return self._client_final(challenge)
        if self._state == "sent-final":
            # Some servers send server-final as a challenge and then an empty <success/>.
            self._check_server_final(challenge)
            return b""
        raise AuthenticationError("unexpected-challenge", f"unexpected challenge in {self.name}")

    def verify_success(self, additional_data: bytes | None) -> None:
        if self._state == "verified" and not additional_data:
            return
        if self._state != "sent-final":
            raise AuthenticationError(
                "server-signature-mismatch", "success before the SCRAM exchange completed"
            )
        if not additional_data:
            raise AuthenticationError(
                "server-signature-mismatch", "the server did not prove it knows the password"
            )
        self._check_server_final(additional_data)

    def _client_final(self, server_first: bytes) -> bytes:
        attributes = _parse_attributes(server_first)
        if "m" in attributes:
            raise AuthenticationError("malformed-server-message", "unsupported mandatory extension")
        server_nonce = attributes.get("r", "")
        if not server_nonce.startswith(self._nonce) or len(server_nonce) <= len(self._nonce):
            raise AuthenticationError(
                "invalid-server-nonce", "the server nonce does not extend the client nonce"
            )
        if not _is_printable(server_nonce):
            raise AuthenticationError("invalid-server-nonce", "the server nonce is not printable")
        try:
            salt = base64.b64decode(attributes.get("s", ""), validate=True)
        except binascii.Error:
            raise AuthenticationError("malformed-server-message", "salt is not base64") from None
        if not salt:
            raise AuthenticationError("malformed-server-message", "empty salt")
        iterations_text = attributes.get("i", "")
        if not (iterations_text.isascii() and iterations_text.isdigit()):
            raise AuthenticationError("invalid-iteration-count", "iteration count is not a number")
        iterations = int(iterations_text)
        if not 1 <= iterations <= self.max_iterations:
            raise AuthenticationError(
                "invalid-iteration-count",
                f"iteration count {iterations} outside 1..{self.max_iterations}",
            )
        assert self._password is not None
        salted = hashlib.pbkdf2_hmac(self.hash_name, self._password, salt, iterations)
        self._password = None  # no longer needed: keep the secret in memory as briefly as we can
        channel_binding = base64.b64encode(_GS2_HEADER).decode()
        without_proof = f"c={channel_binding},r={server_nonce}".encode()
        auth_message = b",".join((self._client_first_bare, server_first, without_proof))
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        client_signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        server_key = self._hmac(salted, b"Server Key")
        self._expected_server_signature = self._hmac(server_key, auth_message)
        self._state = "sent-final"
        return without_proof + b",p=" + base64.b64encode(proof)

    def _check_server_final(self, server_final: bytes) -> None:
        attributes = _parse_attributes(server_final)
        if "e" in attributes:
            raise AuthenticationError(attributes["e"] or "server-error", "the server refused SCRAM")
        try:
            signature = base64.b64decode(attributes.get("v", ""), validate=True)
        except binascii.Error:
            signature = b""
        expected = self._expected_server_signature
        if not signature or expected is None or not hmac.compare_digest(signature, expected):
            raise AuthenticationError(
                "server-signature-mismatch", "the server signature is wrong or missing"
            )
        self._state = "verified"

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self.hash_name).digest()

    def __repr__(self) -> str:
        return f"ScramMechanism(name={self.name!r}, username={self.username!r})"


def _is_printable(text: str) -> bool:
    return all(0x21 <= ord(char) <= 0x7E and char != "," for char in text)


def _parse_attributes(message: bytes) -> dict[str, str]:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationError("malformed-server-message", "not UTF-8") from None
    attributes: dict[str, str] = {}
    for item in text.split(","):
        key, equals, value = item.partition("=")
        if len(key) != 1 or not equals:
            raise AuthenticationError("malformed-server-message", "not a list of SCRAM attributes")
        attributes.setdefault(key, value)
    return attributes


def choose_mechanism(
    offered: Iterable[str],
    *,
    username: str | None,
    password: str | None,
    tls_active: bool,
    allow_plain_without_tls: bool = False,
) -> SaslMechanism:
    """The strongest usable mechanism among those the server offers.

    With a username: SCRAM-SHA-256, then SCRAM-SHA-1, then PLAIN (PLAIN only over TLS unless
    `allow_plain_without_tls`). Without a username: ANONYMOUS.
    """
    names = [name.strip() for name in offered]
    available = set(names)
    if username is not None:
        if password is None:
            raise AuthenticationError("invalid-credentials", f"no password for {username!r}")
        if "SCRAM-SHA-256" in available:
            return ScramMechanism("sha256", username, password)
        if "SCRAM-SHA-1" in available:
            return ScramMechanism("sha1", username, password)
        if "PLAIN" in available and (tls_active or allow_plain_without_tls):
            return PlainMechanism(username, password)
        wanted = "SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN"
        if not tls_active and not allow_plain_without_tls:
            wanted += " (PLAIN only over TLS)"
    else:
        if "ANONYMOUS" in available:
            return AnonymousMechanism()
        wanted = "ANONYMOUS (no username configured)"
    raise AuthenticationError(
        "no-usable-mechanism", f"server offers {', '.join(names) or 'nothing'}; need {wanted}"
    )


def parse_failure(el: Element) -> AuthenticationError:
    """The error carried by a `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>` element."""
    condition = "undefined-condition"
    text: str | None = None
    for child in el:
        if child.tag == f"{{{NS_SASL}}}text":
            text = (child.text or "").strip() or None
        elif child.tag.startswith(f"{{{NS_SASL}}}"):
            condition = child.tag.rsplit("}", 1)[1]
    return AuthenticationError(condition, text)
