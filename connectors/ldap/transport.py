"""LDAP plumbing shared by the group connector and the LDAP directory source (ldap3).

* :class:`Endpoint` parses and checks where and how to connect: ``url``
  (``ldaps://host:636`` or ``ldap://host:389``), ``security`` (``ldaps``, ``starttls`` or
  ``plain``; plain LDAP only when configured so explicitly), ``ca_file`` (the CA bundle that
  verifies the server; default: the system's), ``timeout`` in seconds.
* :func:`connect` opens a bound connection (TLS negotiated *before* the bind, the certificate
  and host name verified) and closes it; every failure becomes a
  :class:`~connectors.base.TransientError` or :class:`~connectors.base.PermanentError` whose
  message names the server and the LDAP result, never the password.
* :func:`paged_entries` is a search with the Simple Paged Results control (RFC 2696), so a
  base holding more entries than the server's size limit is read completely, page by page.
* Every DN and filter built from data goes through ``ldap3.utils.dn.escape_rdn`` (RFC 4514)
  and ``ldap3.utils.conv.escape_filter_chars`` (RFC 4515): :func:`rdn`, :func:`eq_filter`.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from connectors.base import ConfigError, PermanentError, TransientError

SECURITY_MODES = ("ldaps", "starttls", "plain")

# LDAP result codes (RFC 4511) worth retrying: the server is busy, unavailable, shutting
# down, or a limit was hit; anything else (bad credentials, access denied, no such object,
# constraint violations) needs a person.
TRANSIENT_RESULTS = {
    3: "timeLimitExceeded",
    11: "adminLimitExceeded",
    51: "busy",
    52: "unavailable",
    80: "other",
    81: "serverDown",
    85: "timeout",
    91: "connectError",
}

_ATTR_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")


def attribute_name(value: Any, *, what: str) -> str:
    """A checked attribute type name (letters, digits, hyphens), for config keys that name one."""
    if not isinstance(value, str) or not _ATTR_RE.match(value):
        raise ConfigError(f"ldap: {what} must be an attribute name (letters, digits, hyphens)")
    return value


def check_dn(value: Any, *, what: str) -> str:
    """A syntactically valid DN from configuration (RFC 4514), normalised spacing kept."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"ldap: {what} must be a distinguished name")
    try:
        parse_dn(value)
    except ldap_exc.LDAPInvalidDnError:
        raise ConfigError(f"ldap: {what} {value!r} is not a valid distinguished name") from None
    return value.strip()


_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")


def unescape_value(value: str) -> str:
    """An RDN value as the server holds it (RFC 4514 escapes undone: ``\\2C`` and ``\\,``
    both become ``,``; hex pairs are UTF-8 bytes)."""
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if _HEX_PAIR.fullmatch(pair):
                out += bytes.fromhex(pair)
                i += 3
                continue
            out += value[i + 1].encode()
            i += 2
            continue
        out += char.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def norm_dn(dn: str) -> str:
    """A comparable form of a DN: attribute types and values lower-cased, spaces dropped,
    each value re-escaped (so ``UID=Ann, OU=People`` equals ``uid=ann,ou=people``)."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except ldap_exc.LDAPInvalidDnError:
        return dn.strip().lower()
    out: list[str] = []
    for attr, value, sep in parts:
        out.append(f"{attr.lower()}={escape_rdn(unescape_value(value).lower())}")
        out.append("," if sep == "," else "+" if sep == "+" else "")
    return "".join(out).rstrip(",+")


def under(dn: str, base: str) -> bool:
    """Whether ``dn`` is ``base`` or below it (compared normalised)."""
    d, b = norm_dn(dn), norm_dn(base)
    return d == b or d.endswith("," + b)


def rdn(attribute: str, value: str) -> str:
    """``attribute=value`` with the value escaped (RFC 4514): ``,`` ``+`` ``\\`` ``=`` ... stay
    inside the value, so a name can never add an RDN or move the DN elsewhere."""
    return f"{attribute}={escape_rdn(value)}"


def eq_filter(attribute: str, value: str) -> str:
    """``(attribute=value)`` with the value escaped (RFC 4515): ``*`` ``(`` ``)`` ``\\`` and NUL
    become ``\\2a`` ``\\28`` ``\\29`` ``\\5c`` ``\\00``, so a name can never widen a filter."""
    return f"({attribute}={escape_filter_chars(value)})"


def first_rdn(dn: str) -> tuple[str, str] | None:
    """(attribute lower-cased, unescaped value) of the first RDN of ``dn``; None when the DN
    cannot be parsed or its first RDN is multi-valued."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except ldap_exc.LDAPInvalidDnError:
        return None
    if not parts or parts[0][2] == "+":
        return None
    return parts[0][0].lower(), unescape_value(parts[0][1])


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str
    ca_file: str | None
    timeout: int

    @property
    def label(self) -> str:
        scheme = "ldaps" if self.security == "ldaps" else "ldap"
        return f"{scheme}://{self.host}:{self.port}"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, who: str = "ldap") -> Endpoint:
        url = config.get("url")
        if not isinstance(url, str) or not url:
            raise ConfigError(f"{who}: url is required (ldaps://host:636 or ldap://host:389)")
        parts = urlsplit(url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ConfigError(f"{who}: url must be ldaps://host[:port] or ldap://host[:port]")
        if parts.username or parts.password or (parts.path not in ("", "/")) or parts.query:
            raise ConfigError(f"{who}: url holds only scheme, host and port")
        default = "ldaps" if parts.scheme == "ldaps" else "starttls"
        security = config.get("security", default)
        if security not in SECURITY_MODES:
            raise ConfigError(f"{who}: security must be one of {', '.join(SECURITY_MODES)}")
        if (parts.scheme == "ldaps") != (security == "ldaps"):
            raise ConfigError(
                f"{who}: security {security} does not match the url scheme {parts.scheme}"
            )
        ca_file = config.get("ca_file") or None
        if ca_file is not None and not isinstance(ca_file, str):
            raise ConfigError(f"{who}: ca_file must be a path")
        timeout = config.get("timeout", 10)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 300:
            raise ConfigError(f"{who}: timeout must be 1 to 300 seconds")
        try:
            port = parts.port or (636 if parts.scheme == "ldaps" else 389)
        except ValueError:
            raise ConfigError(f"{who}: url has an invalid port") from None
        return cls(parts.hostname, port, security, ca_file, timeout)


def _server(endpoint: Endpoint) -> ldap3.Server:
    tls = None
    if endpoint.security != "plain":
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            version=ssl.PROTOCOL_TLS_CLIENT,
            ca_certs_file=endpoint.ca_file,
        )
    return ldap3.Server(
        endpoint.host,
        port=endpoint.port,
        use_ssl=endpoint.security == "ldaps",
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=endpoint.timeout,
    )


def result_error(result: Mapping[str, Any] | None, *, action: str, where: str) -> Exception:
    """TransientError or PermanentError for a failed LDAP operation's result."""
    result = result or {}
    code = int(result.get("result") or 0)
    name = result.get("description") or TRANSIENT_RESULTS.get(code) or "error"
    text = str(result.get("message") or "").strip().splitlines()[0:1]
    detail = f": {text[0][:200]}" if text else ""
    message = f"LDAP {action} at {where} failed: {name} (result {code}){detail}"
    if code in TRANSIENT_RESULTS:
        return TransientError(message)
    return PermanentError(message)


def exception_error(exc: Exception, *, action: str, where: str) -> Exception:
    """Map an ldap3 exception (socket, TLS, protocol) to TransientError or PermanentError."""
    if isinstance(exc, ldap_exc.LDAPStartTLSError | ldap_exc.LDAPSSLConfigurationError) or (
        isinstance(exc, ldap_exc.LDAPSocketOpenError) and "certificate" in str(exc).lower()
    ):
        return PermanentError(
            f"LDAP {action} at {where} failed: TLS could not be established or the server "
            "certificate was not trusted (check ca_file and the host name)"
        )
    if isinstance(
        exc,
        ldap_exc.LDAPSocketOpenError
        | ldap_exc.LDAPSocketReceiveError
        | ldap_exc.LDAPSocketSendError
        | ldap_exc.LDAPSessionTerminatedByServerError
        | ldap_exc.LDAPResponseTimeoutError
        | ldap_exc.LDAPCommunicationError
        | TimeoutError
        | OSError,
    ):
        return TransientError(f"LDAP {action} at {where} failed: server unreachable or timed out")
    if isinstance(exc, ldap_exc.LDAPOperationResult):
        return result_error(
            {"result": exc.result, "description": exc.description, "message": exc.message},
            action=action,
            where=where,
        )
    return PermanentError(f"LDAP {action} at {where} failed: {type(exc).__name__}")


@contextmanager
def connect(
    endpoint: Endpoint, *, bind_dn: str, password: str, action: str
) -> Iterator[ldap3.Connection]:
    """A connection bound as ``bind_dn`` over the configured security; unbound afterwards."""
    where = endpoint.label
    conn = ldap3.Connection(
        _server(endpoint),
        user=bind_dn,
        password=password,
        authentication=ldap3.SIMPLE,
        auto_bind=ldap3.AUTO_BIND_NONE,
        receive_timeout=endpoint.timeout,
        raise_exceptions=False,
        read_only=False,
        return_empty_attributes=False,
    )
    try:
        try:
            conn.open()
            if endpoint.security == "starttls" and not conn.start_tls():
                raise PermanentError(
                    f"LDAP {action} at {where} failed: the server refused StartTLS"
                )
            if not conn.bind():
                error = result_error(conn.result, action="bind", where=where)
                if int((conn.result or {}).get("result") or 0) == 49:
                    error = PermanentError(
                        f"LDAP bind at {where} failed: invalid credentials for {bind_dn}"
                    )
                raise error
        except ldap_exc.LDAPException as exc:
            raise exception_error(exc, action=action, where=where) from None
        except OSError as exc:
            raise exception_error(exc, action=action, where=where) from None
        try:
            yield conn
        except ldap_exc.LDAPException as exc:
            raise exception_error(exc, action=action, where=where) from None
    finally:
        with suppress(Exception):  # closing a broken connection
            conn.unbind()


def paged_entries(
    conn: ldap3.Connection,
    base: str,
    search_filter: str,
    *,
    attributes: list[str],
    page_size: int = 500,
    scope: str = ldap3.SUBTREE,
    action: str = "search",
    where: str = "",
) -> Iterator[tuple[str, dict[str, list]]]:
    """(dn, raw attribute values as str lists) of every entry, following the paged results
    cookie on this connection. A missing base yields nothing."""
    cookie: bytes | None = None
    while True:
        ok = conn.search(
            base,
            search_filter,
            search_scope=scope,
            attributes=attributes,
            paged_size=page_size,
            paged_cookie=cookie,
        )
        if not ok and int((conn.result or {}).get("result") or 0) not in (0, 32):
            raise result_error(conn.result, action=action, where=where)
        for entry in conn.response or ():
            if entry.get("type") != "searchResEntry":
                continue
            attrs = {
                key.lower(): [_text(v) for v in values]
                for key, values in (entry.get("raw_attributes") or {}).items()
            }
            yield entry["dn"], attrs
        controls = (conn.result or {}).get("controls") or {}
        cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
        if not cookie:
            return


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
