"""WeChat's HTTP API over aiohttp, with the access token shared by every instance of a deployment.

The token (`/cgi-bin/token`, or `/cgi-bin/stable_token` with WECHAT_TOKEN_API=stable) lives in the `wechat_accounts` row of the account: an instance
takes it from there, and only when it is missing, about to expire (10 minutes' margin) or
refused as an invalid credential (40001, 40014, 42001) does one instance fetch a new one,
holding the row's lock (on PostgreSQL) so that the others wait and then use it. WeChat
invalidates the previous token when a new one is fetched, so fetching per instance (or per
message) would make the instances knock each other's tokens out.

45009 (the account's daily API quota is used up) pauses every call of every instance until
the next midnight in China (when WeChat resets the quota): calls raise `QuotaExhausted` at
once instead of spending more. Errors come back as `WeChatError` with WeChat's `errcode`;
timeouts and connection errors as aiohttp/asyncio exceptions (the callers retry with backoff).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import writing
from storage.models import WeChatAccount
from storage.timeutil import utcnow

from .config import WeChatConfig

log = logging.getLogger("gridbot.wechat")

INVALID_CREDENTIAL = {40001, 40014, 42001}
QUOTA = 45009
TOKEN_MARGIN = timedelta(minutes=10)
PAUSE_RECHECK = timedelta(seconds=30)
MAX_MEDIA_BYTES = 10 * 1024 * 1024
CHINA = ZoneInfo("Asia/Shanghai")


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, code: int, message: str = "", path: str = ""):
        super().__init__(f"{path}: errcode {code} {message}".strip())
        self.code = code
        self.errmsg = message


class QuotaExhausted(WeChatError):
    """The API quota is used up (45009): nothing is sent until `until`."""

    def __init__(self, until: datetime, path: str = ""):
        super().__init__(QUOTA, "api quota reached, paused", path)
        self.until = until


@dataclass
class Media:
    data: bytes
    content_type: str


def next_china_midnight(now: datetime) -> datetime:
    local = now.astimezone(CHINA)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), CHINA)
    return midnight.astimezone(now.tzinfo)


class WeChatAPI:
    def __init__(
        self,
        config: WeChatConfig,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: aiohttp.ClientSession,
        *,
        clock: Callable[[], datetime] = utcnow,
        timeout: float = 10.0,
    ):
        self.config = config
        self.sessionmaker = sessionmaker
        self.http = http
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: str | None = None
        self._token_expires: datetime | None = None
        self._refresh_lock = asyncio.Lock()
        self._paused_until: datetime | None = None
        self._pause_checked: datetime | None = None
        self.token_fetches = 0  # fetched from WeChat by this process (for tests and logs)

    def url(self, path: str) -> str:
        return f"{self.config.api_base_url}{path}"

    # -- the shared access token ------------------------------------------------------------------

    async def access_token(self) -> str:
        now = self.clock()
        if self._token and self._token_expires and self._token_expires - TOKEN_MARGIN > now:
            return self._token
        async with self._refresh_lock:
            now = self.clock()
            if self._token and self._token_expires and self._token_expires - TOKEN_MARGIN > now:
                return self._token
            async with self.sessionmaker() as session:
                row = await session.get(WeChatAccount, self.config.app_id)
                if row is not None and row.access_token and row.expires_at and row.expires_at - TOKEN_MARGIN > now:
                    self._remember(row.access_token, row.expires_at)
                    return row.access_token
            return await self._refresh(stale=self._token)

    def _remember(self, token: str, expires_at: datetime) -> None:
        self._token, self._token_expires = token, expires_at

    async def _ensure_row(self) -> None:
        try:
            async with self.sessionmaker.begin() as session:
                await writing(session)
                if await session.get(WeChatAccount, self.config.app_id) is None:
                    session.add(WeChatAccount(app_id=self.config.app_id))
        except IntegrityError:
            pass  # another instance created it at the same moment

    async def _refresh(self, stale: str | None, refused: bool = False) -> str:
        """Fetch a new token unless another instance already replaced `stale` (expiring, or `refused`)."""
        await self._ensure_row()
        async with self.sessionmaker.begin() as session:
            await writing(session)
            row = await session.get(WeChatAccount, self.config.app_id, with_for_update=True, populate_existing=True)
            now = self.clock()
            if (row.access_token and row.access_token != stale and row.expires_at
                    and row.expires_at - TOKEN_MARGIN > now):
                self._remember(row.access_token, row.expires_at)
                return row.access_token
            token, expires_in = await self._fetch_token(force=refused)
            if self.config.stable_token and not refused and timedelta(seconds=expires_in) <= TOKEN_MARGIN:
                token, expires_in = await self._fetch_token(force=True)  # the stable token's last minutes
            row.access_token = token
            row.expires_at = now + timedelta(seconds=expires_in)
            row.refreshed_at = now
            self._remember(token, row.expires_at)
        log.info("wechat access token refreshed (valid %s s)", expires_in)
        return token

    async def _fetch_token(self, force: bool = False) -> tuple[str, int]:
        """/cgi-bin/token, or /cgi-bin/stable_token (WECHAT_TOKEN_API=stable; `force` after a refusal)."""
        credentials = {"grant_type": "client_credential", "appid": self.config.app_id, "secret": self.config.app_secret}
        path = "/cgi-bin/stable_token" if self.config.stable_token else "/cgi-bin/token"
        await self._check_pause(path)
        if self.config.stable_token:
            request = self.http.post(self.url(path), json={**credentials, "force_refresh": force}, timeout=self.timeout)
        else:
            request = self.http.get(self.url(path), params=credentials, timeout=self.timeout)
        async with request as response:
            data = await _json(response, path)
        self.token_fetches += 1
        code = int(data.get("errcode") or 0)
        if code:
            await self._on_error(code, data.get("errmsg", ""), path)
        return str(data["access_token"]), int(data.get("expires_in") or 7200)

    async def invalidate(self, token: str) -> None:
        """WeChat refused `token`: forget it here; the next call fetches a new one (once, for all)."""
        if self._token == token:
            self._token, self._token_expires = None, None
        async with self._refresh_lock:
            if self._token is None:
                await self._refresh(stale=token, refused=True)

    # -- the quota pause ----------------------------------------------------------------------------

    async def paused_until(self) -> datetime | None:
        """Until when calls are paused after 45009 (shared by all instances), or None."""
        now = self.clock()
        if self._pause_checked is None or now - self._pause_checked > PAUSE_RECHECK:
            async with self.sessionmaker() as session:
                row = await session.get(WeChatAccount, self.config.app_id)
            self._paused_until = row.paused_until if row is not None else None
            self._pause_checked = now
        if self._paused_until is not None and self._paused_until > now:
            return self._paused_until
        return None

    async def _check_pause(self, path: str) -> None:
        until = await self.paused_until()
        if until is not None:
            raise QuotaExhausted(until, path)

    async def pause(self, until: datetime) -> None:
        await self._ensure_row()
        async with self.sessionmaker.begin() as session:
            await writing(session)
            row = await session.get(WeChatAccount, self.config.app_id, with_for_update=True, populate_existing=True)
            row.paused_until = until
        self._paused_until, self._pause_checked = until, self.clock()
        log.warning("wechat API quota reached (45009): sending paused until %s", until.isoformat())

    async def _on_error(self, code: int, message: str, path: str) -> None:
        if code == QUOTA:
            until = next_china_midnight(self.clock())
            await self.pause(until)
            raise QuotaExhausted(until, path)
        raise WeChatError(code, message, path)

    # -- calls -------------------------------------------------------------------------------------------

    async def call(self, path: str, payload: dict[str, Any] | None = None, *, method: str = "POST") -> dict[str, Any]:
        """One API call with the shared token; an invalid-credential answer refreshes it and tries once more."""
        for attempt in (1, 2):
            await self._check_pause(path)
            token = await self.access_token()
            body = None
            if payload is not None:
                body = json.dumps(payload, ensure_ascii=False).encode("utf-8")  # WeChat wants UTF-8, not \u escapes
            async with self.http.request(
                method, self.url(path), params={"access_token": token}, data=body, timeout=self.timeout,
                headers={"Content-Type": "application/json; charset=utf-8"} if body is not None else None,
            ) as response:
                data = await _json(response, path)
            code = int(data.get("errcode") or 0)
            if code in INVALID_CREDENTIAL and attempt == 1:
                log.warning("wechat %s: token refused (%s), refreshing", path, code)
                await self.invalidate(token)
                continue
            if code:
                await self._on_error(code, data.get("errmsg", ""), path)
            return data
        raise AssertionError("unreachable")

    async def send_custom(self, payload: dict[str, Any]) -> None:
        await self.call("/cgi-bin/message/custom/send", payload)

    async def send_template(self, payload: dict[str, Any]) -> None:
        await self.call("/cgi-bin/message/template/send", payload)

    async def send_subscribe(self, payload: dict[str, Any]) -> None:
        await self.call("/cgi-bin/message/subscribe/bizsend", payload)

    async def create_qrcode(self, scene: str) -> dict[str, Any]:
        """A permanent parametric QR code whose scene is `scene` (a grid code): {ticket, url}."""
        return await self.call("/cgi-bin/qrcode/create", {
            "action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}},
        })

    async def media(self, media_id: str) -> Media:
        """A temporary media file sent by a person (image, voice); at most 10 MB."""
        path = "/cgi-bin/media/get"
        for attempt in (1, 2):
            await self._check_pause(path)
            token = await self.access_token()
            async with self.http.get(self.url(path), params={"access_token": token, "media_id": media_id},
                                     timeout=self.timeout) as response:
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type in ("application/json", "text/plain", "text/json"):
                    data = await _json(response, path)
                    code = int(data.get("errcode") or 0)
                    if code in INVALID_CREDENTIAL and attempt == 1:
                        await self.invalidate(token)
                        continue
                    await self._on_error(code or -1, data.get("errmsg", "no media"), path)
                if response.status != 200:
                    raise WeChatError(-1, f"HTTP {response.status}", path)
                if (response.content_length or 0) > MAX_MEDIA_BYTES:
                    raise WeChatError(-1, "media too large", path)
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > MAX_MEDIA_BYTES:
                        raise WeChatError(-1, "media too large", path)
                return Media(bytes(data), content_type or "application/octet-stream")
        raise AssertionError("unreachable")


async def _json(response: aiohttp.ClientResponse, path: str) -> dict[str, Any]:
    if response.status >= 500:
        raise WeChatError(-1, f"HTTP {response.status}", path)
    try:
        data = await response.json(content_type=None)
    except ValueError:
        raise WeChatError(-1, f"HTTP {response.status}: not JSON", path) from None
    if not isinstance(data, dict):
        raise WeChatError(-1, "not a JSON object", path)
    return data
