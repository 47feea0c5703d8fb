"""Signed HTTP webhook connector: the downstream service applies grants itself.

Service ``connector_config``::

    {
      "url": "https://svc.internal/tollgate",   # required; http(s) only, no credentials
      "secret_env": "TOLLGATE_WEBHOOK_SVC_SECRET",  # required: env var with the HMAC secret
      "timeout": 10,                            # seconds per request
      "health_timeout": 3,                      # seconds for health()
      "holders_url": "https://svc.internal/tollgate/holders",  # default <url>/holders
      "last_used_url": "https://svc.internal/tollgate/last-used" # optional; enables last_used
    }

Grant and revoke POST this JSON to ``url``::

    {"operation": "grant" | "revoke",
     "principal": {"email": ..., "login": ...},
     "entitlement": {"service": ..., "slug": ..., "config": {...}},
     "idempotency_key": ..., "timestamp": "<unix seconds>"}

Headers: ``Content-Type: application/json``, ``X-Tollgate-Timestamp: <unix seconds>``,
``X-Tollgate-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` and
``Idempotency-Key``. The receiver checks the signature with :func:`verify_signature` and
treats a repeated idempotency key as the same request. Its answer:

* 2xx: done. An optional JSON body ``{"changed": false}`` reports a no-op.
* 408, 425, 429 and 5xx, timeouts, refused or dropped connections: :class:`TransientError`.
* Other 4xx and any redirect: :class:`PermanentError` (redirects are never followed).

``list_holders`` GETs ``<holders_url>?cursor=&page_size=&entitlement=`` signed the same way,
with the query string (without ``?``) as the signed body, and expects
``{"holders": [{"principal": ..., "entitlement": ..., "level": ...}], "next": <cursor|null>}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from connectors.base import (
    ConfigError,
    Connector,
    ConnectorDescription,
    ConnectorError,
    EntitlementRef,
    Health,
    Holder,
    Page,
    PermanentError,
    PrincipalRef,
    ResourceType,
    Result,
    TransientError,
)

SIGNATURE_HEADER = "X-Tollgate-Signature"
TIMESTAMP_HEADER = "X-Tollgate-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TRANSIENT_STATUSES = {408, 425, 429}
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
USER_AGENT = "Tollgate-Connector/1"


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Tollgate-Signature`` value for ``timestamp`` and ``body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str | bytes,
    timestamp: str | None,
    body: bytes,
    header: str | None,
    tolerance_s: int = 300,
    *,
    now: float | None = None,
) -> bool:
    """For receivers: is ``header`` a valid signature of ``body`` sent at ``timestamp``?

    False when the header or timestamp is missing or malformed, the timestamp is more than
    ``tolerance_s`` seconds away from ``now`` (replay protection), or the HMAC differs
    (compared in constant time).
    """
    if not header or not timestamp or not header.startswith("sha256="):
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx surfaces as an HTTPError and is mapped to PermanentError


def _check_url(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"webhook connector: {key} must be a URL")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"webhook connector: {key} must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ConfigError(f"webhook connector: {key} may not carry credentials")
    return value


class WebhookConnector(Connector):
    name = "webhook"
    env_keys = ("secret_env",)
    required_keys = ("url", "secret_env")
    supports_list_holders = True

    def __init__(self, config=None):
        super().__init__(config)
        self.url = _check_url(self.config["url"], "url")
        self.holders_url = _check_url(
            self.config.get("holders_url") or self.url.rstrip("/") + "/holders", "holders_url"
        )
        last_used_url = self.config.get("last_used_url")
        self.last_used_url = _check_url(last_used_url, "last_used_url") if last_used_url else None
        timeout = self.config.get("timeout", 10)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigError("webhook connector: timeout must be a positive number of seconds")
        self.timeout = float(timeout)
        health_timeout = self.config.get("health_timeout", 3)
        if (
            not isinstance(health_timeout, int | float)
            or isinstance(health_timeout, bool)
            or health_timeout <= 0
        ):
            raise ConfigError("webhook connector: health_timeout must be a positive number")
        self.health_timeout = float(health_timeout)
        self._opener = urllib.request.build_opener(_NoRedirect())

    @property
    def supports_last_used(self) -> bool:  # type: ignore[override]
        return self.last_used_url is not None

    def describe(self) -> ConnectorDescription:
        host = urllib.parse.urlsplit(self.url).hostname
        return ConnectorDescription(
            name=self.name,
            resource_types=(ResourceType("entitlement", f"entitlements applied by {host}"),),
            supports_list_holders=True,
            supports_last_used=self.last_used_url is not None,
            notes=f"signed HMAC-SHA256 webhook to {host}",
        )

    # Operations ------------------------------------------------------------------------
    def grant(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        return self._change("grant", principal, entitlement, idempotency_key)

    def revoke(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        return self._change("revoke", principal, entitlement, idempotency_key)

    def _change(
        self, operation: str, principal: PrincipalRef, entitlement: EntitlementRef, key: str
    ) -> Result:
        if not key:
            raise ValueError("idempotency_key is required")
        timestamp = str(int(time.time()))
        body = json.dumps(
            {
                "operation": operation,
                "principal": {"email": principal.email, "login": principal.login},
                "entitlement": {
                    "service": entitlement.service_slug,
                    "slug": entitlement.slug,
                    "config": dict(entitlement.config or {}),
                },
                "idempotency_key": key,
                "timestamp": timestamp,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        status, payload = self._request("POST", self.url, body, timestamp, idempotency_key=key)
        changed = True
        if isinstance(payload, dict) and isinstance(payload.get("changed"), bool):
            changed = payload["changed"]
        return Result(changed=changed, detail=f"{operation} accepted by webhook (HTTP {status})")

    def list_holders(
        self,
        entitlement: EntitlementRef | None = None,
        *,
        cursor: str | None = None,
        page_size: int = 500,
    ) -> Page:
        page_size = self.check_page_size(page_size)
        params = {"cursor": cursor or "", "page_size": str(page_size)}
        if entitlement is not None:
            params["entitlement"] = entitlement.slug
        query = urllib.parse.urlencode(params)
        separator = "&" if urllib.parse.urlsplit(self.holders_url).query else "?"
        timestamp = str(int(time.time()))
        _, payload = self._request(
            "GET", f"{self.holders_url}{separator}{query}", None, timestamp, signed=query.encode()
        )
        if not isinstance(payload, dict) or not isinstance(payload.get("holders"), list):
            raise PermanentError('webhook holders answer is not {"holders": [...], "next": ...}')
        holders = []
        for item in payload["holders"]:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("principal"), str)
                or not isinstance(item.get("entitlement"), str)
                or not isinstance(item.get("level"), str | None)
            ):
                raise PermanentError(
                    f"webhook holders answer has a malformed holder: {item!r:.200}"
                )
            holders.append(Holder(item["principal"], item["entitlement"], item.get("level")))
        next_cursor = payload.get("next")
        if next_cursor is not None and not isinstance(next_cursor, str):
            raise PermanentError("webhook holders answer: next must be a string or null")
        return Page(holders=tuple(holders), next_cursor=next_cursor or None)

    def health(self) -> Health:
        """A signed ``GET <holders_url>?cursor=&page_size=1``: the receiver answers and accepts
        our signature (a 401 there means the shared secret differs)."""
        started = time.monotonic()
        query = urllib.parse.urlencode({"cursor": "", "page_size": "1"})
        separator = "&" if urllib.parse.urlsplit(self.holders_url).query else "?"
        try:
            self._request(
                "GET",
                f"{self.holders_url}{separator}{query}",
                None,
                str(int(time.time())),
                signed=query.encode(),
                timeout=min(self.timeout, self.health_timeout),
            )
        except ConnectorError as exc:
            return Health(False, exc.message, round((time.monotonic() - started) * 1000, 1))
        except Exception as exc:  # never raises
            return Health(False, f"webhook health check failed: {type(exc).__name__}")
        host = urllib.parse.urlsplit(self.holders_url).hostname
        return Health(
            True,
            f"webhook at {host} answers signed requests",
            round((time.monotonic() - started) * 1000, 1),
        )

    def last_used(
        self, principal: PrincipalRef, entitlement: EntitlementRef | None = None
    ) -> datetime | None:
        if self.last_used_url is None:
            return super().last_used(principal, entitlement)
        params = {"principal": principal.email, "login": principal.login}
        if entitlement is not None:
            params["entitlement"] = entitlement.slug
        query = urllib.parse.urlencode(params)
        timestamp = str(int(time.time()))
        _, payload = self._request(
            "GET", f"{self.last_used_url}?{query}", None, timestamp, signed=query.encode()
        )
        value = payload.get("last_used") if isinstance(payload, dict) else None
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise PermanentError(
                f"webhook last_used is not an ISO 8601 time: {value!r:.100}"
            ) from exc
        if parsed.tzinfo is None:
            raise PermanentError("webhook last_used must carry a time zone")
        return parsed

    # HTTP ------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        timestamp: str,
        *,
        idempotency_key: str | None = None,
        signed: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        secret = self.secret_from_env("secret_env")
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body if body is not None else signed or b""),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 (scheme checked)
        host = urllib.parse.urlsplit(url).hostname
        limit = timeout or self.timeout
        try:
            with self._opener.open(request, timeout=limit) as response:
                status = response.status
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            message = f"webhook {method} to {host} answered HTTP {status}"
            if status in TRANSIENT_STATUSES or status >= 500:
                raise TransientError(message) from None
            raise PermanentError(message) from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(
                f"webhook {method} to {host}: TLS verification failed: {exc.verify_message}"
            ) from None
        except TimeoutError as exc:
            raise TransientError(f"webhook {method} to {host} timed out after {limit:g}s") from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise PermanentError(
                    f"webhook {method} to {host}: TLS verification failed"
                ) from None
            if isinstance(reason, TimeoutError):
                raise TransientError(
                    f"webhook {method} to {host} timed out after {limit:g}s"
                ) from None
            raise TransientError(f"webhook {method} to {host} failed: {reason}") from None
        except (ConnectionError, OSError) as exc:
            raise TransientError(f"webhook {method} to {host} failed: {exc}") from None
        if not 200 <= status < 300:
            raise PermanentError(f"webhook {method} to {host} answered HTTP {status}")
        if len(raw) > MAX_RESPONSE_BYTES:
            raise PermanentError(
                f"webhook {method} to {host}: answer larger than {MAX_RESPONSE_BYTES} bytes"
            )
        if not raw.strip():
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            if method == "POST":
                return status, None  # a 2xx with a non-JSON body still means done
            raise PermanentError(f"webhook {method} to {host}: answer is not JSON") from None
