"""Security headers, per-client rate limits and bounded request bodies for the web front door."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

log = logging.getLogger("gridbot.web")

# The chat page runs one script file and one style sheet from this origin; nothing inline.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# JSON, XML, event streams: nothing in them may load or run anything.
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"
PERMISSIONS_POLICY = (
    "geolocation=(self), camera=(self), microphone=(self), payment=(), usb=(), serial=(), bluetooth=(), "
    "interest-cohort=(), browsing-topics=()"
)
CHAT_PATHS = ("/chat/", "/static/")


RETRY_AFTER_OUTAGE = 5  # seconds a client is asked to wait while the database is unreachable


class DatabaseOutage:
    """Tells a database outage from a bug, and logs it once when it starts and once when it ends,
    not a traceback per request. `failed(exc)` is True for an outage (answer 503 + Retry-After)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.since: float | None = None
        self.refused = 0

    @staticmethod
    def is_outage(exc: BaseException) -> bool:
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as PoolTimeout

        if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, ConnectionError, TimeoutError)):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, OSError) and exc.errno is not None:  # connection refused, host unreachable
            return True
        cause = exc.__cause__ or exc.__context__
        return cause is not None and cause is not exc and isinstance(cause, (ConnectionError, OSError)) \
            and not isinstance(cause, FileNotFoundError)

    def failed(self, exc: BaseException) -> bool:
        if not self.is_outage(exc):
            return False
        self.refused += 1
        if self.since is None:
            self.since = self.clock()
            log.error("database unreachable (%s): answering 503 until it is back", type(exc).__name__)
        return True

    def ok(self) -> None:
        if self.since is not None:
            log.warning("database reachable again after %.0f s; %d requests were answered 503",
                        self.clock() - self.since, self.refused)
            self.since, self.refused = None, 0


def unstorable_input(exc: BaseException) -> bool:
    """The database refused a value the request carried (a NUL character, a number out of range):
    the request's fault, answered 400, not a 500."""
    from sqlalchemy.exc import DataError, DBAPIError

    if isinstance(exc, (DataError, OverflowError)):
        return True
    # PostgreSQL's class 22, "data exception" (asyncpg's errors reach SQLAlchemy as plain DBAPIError).
    return isinstance(exc, DBAPIError) and str(getattr(exc.orig, "sqlstate", "") or "").startswith("22")


OUTAGE = DatabaseOutage()  # one per process: every front door reports the same outage once


class WebError(Exception):
    """An error answered as JSON: `{"error": {"code": ..., "message": ...}}`."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    def response(self) -> web.Response:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return web.json_response({"error": {"code": self.code, "message": self.message}}, status=self.status, headers=headers)


def setup(app: web.Application, *, https: bool = False) -> None:
    """Add the security headers to every response the application prepares (errors included)."""

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        html = response.content_type == "text/html"
        headers.setdefault("Content-Security-Policy", PAGE_CSP if html else OTHER_CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if https:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        path = request.path
        if path == "/" or path.startswith(CHAT_PATHS):
            headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if path.startswith("/static/"):
            # index.html names each file with a content hash (?v=…), so a changed file gets a new URL.
            headers.setdefault("Cache-Control", "public, max-age=86400")
        elif path == "/" or path.startswith("/chat/"):
            headers.setdefault("Cache-Control", "no-store")

    app.on_response_prepare.append(add_headers)


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
HOST_CHECK_EXEMPT = ("/healthz", "/metrics")  # probes from the machine itself


def host_name(host: str | None) -> str:
    """The name in a Host header, without the port: 'example.org:8080' → 'example.org', '[::1]:80' → '::1'."""
    text = (host or "").strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


def allowed_hosts(settings) -> frozenset[str]:
    """GRIDBOT_ALLOWED_HOSTS; without it, the host of GRIDBOT_PUBLIC_URL, or local names only.
    The Telegram webhook's host is always allowed."""
    hosts = {host_name(h) for h in settings.allowed_hosts}
    if not hosts:
        hosts = {host_name(urlsplit(settings.public_url).netloc)} if settings.public_url else set(LOCAL_HOSTS)
    if getattr(settings, "telegram_webhook_url", None):
        hosts.add(host_name(urlsplit(settings.telegram_webhook_url).netloc))
    return frozenset(h for h in hosts if h)


def host_check(settings):
    """A request whose Host header names no allowed host gets a 400 (no page or QR code follows a forged Host)."""
    hosts = allowed_hosts(settings)

    @web.middleware
    async def check(request: web.Request, handler):
        if "*" not in hosts and request.path not in HOST_CHECK_EXEMPT and host_name(request.host) not in hosts:
            return web.json_response(
                {"error": {"code": "host_not_allowed", "message": "this server does not answer to that host name"}},
                status=400)
        return await handler(request)

    return check


def public_base(settings, request: web.Request) -> str:
    """The address put in QR codes and links: GRIDBOT_PUBLIC_URL, else the request's (already checked) host."""
    return (settings.public_url or f"{request.scheme}://{request.host}").rstrip("/")


class RateLimiter:
    """Token buckets in memory, one per key: `capacity` at once, refilled at `per_second`.

    Per process: behind several instances each one limits on its own, which is
    enough to stop a runaway client or script without a shared store.
    """

    def __init__(self, capacity: float, per_second: float, *, max_keys: int = 20_000, clock=time.monotonic):
        self.capacity = float(capacity)
        self.per_second = float(per_second)
        self.max_keys = max_keys
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost` tokens; returns 0 when allowed, else the seconds to wait before trying again."""
        now = self.clock()
        tokens, at = self.buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.per_second)
        if tokens >= cost:
            self.buckets[key] = (tokens - cost, now)
            if len(self.buckets) > self.max_keys:
                self._prune(now)
            return 0.0
        self.buckets[key] = (tokens, now)
        if self.per_second <= 0:
            return 3600.0
        return (cost - tokens) / self.per_second

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely: they behave like new ones."""
        full = self.capacity / self.per_second if self.per_second > 0 else float("inf")
        for key in [k for k, (_, at) in self.buckets.items() if now - at >= full]:
            del self.buckets[key]


@dataclass
class ChatLimits:
    """Sizes and paces for the web chat (per process)."""

    json_bytes: int = 16 * 1024  # one chat message as JSON
    text_chars: int = 2000  # typed text; the dialogs have their own, smaller limits per answer
    photo_bytes: int = 10 * 1024 * 1024
    client_burst: int = 20  # messages a client may send at once…
    client_per_second: float = 0.5  # …and then one every two seconds on average
    ip_burst: int = 200  # everyone behind one address (a school, a mobile carrier's NAT)
    ip_per_second: float = 10.0
    photo_cost: float = 3.0  # a photo costs three messages
    streams_per_client: int = 3  # open /chat/events connections (tabs) per client
    # An open event stream looks at the database when the store wakes it (a notice for that page was
    # written: LISTEN/NOTIFY on PostgreSQL, a signal in this process), and otherwise only this often.
    inbox_poll_seconds: float = 120.0
    keepalive_seconds: float = 15.0


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing with 413 as soon as it exceeds `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise WebError(413, "too_large", f"the request body is larger than {limit} bytes")
    data = bytearray()
    async for chunk in request.content.iter_any():
        data += chunk
        if len(data) > limit:
            raise WebError(413, "too_large", f"the request body is larger than {limit} bytes")
    return bytes(data)


def client_address(request: web.Request) -> str:
    """The peer address. X-Forwarded-For is not trusted: a proxy in front should limit by itself."""
    return request.remote or "unknown"
