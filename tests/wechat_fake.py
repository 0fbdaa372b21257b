"""A fake WeChat API server, and a client that posts to the bot as WeChat's servers do.

`FakeWeChat` answers the calls the front door makes (token, custom/send, template and
subscribe messages, media/get, menu, tags, qrcode/create) with WeChat's JSON and error
codes, and keeps what was sent to whom. Faults are injected per call: `fail(path, errcode)`
answers the next calls of a path with that error, `window_closed` gives 45015 for custom
messages to those openids, `unfollowed` 43004 for everything sent to them, `quota` 45009
for every call, `expire_tokens()` makes the current tokens invalid (40001).

`WeChatServerClient` builds the XML WeChat POSTs (text, location, image, voice, events),
signs it (SHA-1 of the sorted token, timestamp and nonce) and, in safe mode, encrypts it
(AES-256-CBC with the EncodingAESKey, as WeChat's documentation describes), with its own code
rather than the library the bot uses, so that the two are checked against each other.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import secrets
import struct
import time
from collections import defaultdict
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

APP_ID = "wx0123456789abcdef"
APP_SECRET = "s3cret-for-tests"
TOKEN = "gridbot-test-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
ACCOUNT = "gh_0123456789ab"
MSG_IDS = itertools.count(int(time.time()) * 1000)  # WeChat's MsgIds are unique across all users


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and joined (token, timestamp, nonce[, Encrypt])."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def encrypt(aes_key: str, app_id: str, xml: str) -> str:
    """Safe mode as WeChat's documentation describes it, written here from the description (not with the
    library the bot uses): AES-256-CBC, key = Base64(EncodingAESKey + "="), IV = the key's first 16 bytes,
    plaintext = 16 random bytes + the message length (4 bytes, big-endian) + the message + the AppID,
    PKCS#7-padded to 32 bytes, then Base64."""
    key = base64.b64decode(aes_key + "=")
    message = xml.encode("utf-8")
    plain = secrets.token_bytes(16) + struct.pack(">I", len(message)) + message + app_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


class FakeWeChat:
    def __init__(self, *, app_id: str = APP_ID, secret: str = APP_SECRET):
        self.app_id, self.secret = app_id, secret
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.sent: list[dict[str, Any]] = []  # custom messages, in order
        self.templates: list[dict[str, Any]] = []
        self.subscribe_messages: list[dict[str, Any]] = []
        self.menus: list[dict[str, Any]] = []
        self.conditional_menus: list[dict[str, Any]] = []
        self.tags: dict[int, str] = {}
        self.tagged: dict[int, set[str]] = defaultdict(set)
        self.media: dict[str, tuple[bytes, str]] = {}
        self.calls: list[str] = []
        self.failures: dict[str, list[int]] = defaultdict(list)
        self.window_closed: set[str] = set()
        self.unfollowed: set[str] = set()
        self.quota = False
        self.delay = 0.0
        self._serial = itertools.count(1)
        self.runner: web.AppRunner | None = None
        self.url = ""

    # -- faults ------------------------------------------------------------------------------------

    def fail(self, path: str, errcode: int, times: int = 1) -> None:
        self.failures[path].extend([errcode] * times)

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def add_media(self, media_id: str, data: bytes, content_type: str) -> None:
        self.media[media_id] = (data, content_type)

    # -- what was sent -------------------------------------------------------------------------------

    def to(self, openid: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("touser") == openid]

    # -- the server ---------------------------------------------------------------------------------

    async def start(self) -> FakeWeChat:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_post("/cgi-bin/stable_token", self.stable_token)
        app.router.add_get("/cgi-bin/media/get", self.media_get)
        for path in ("/cgi-bin/message/custom/send", "/cgi-bin/message/template/send",
                     "/cgi-bin/message/subscribe/bizsend", "/cgi-bin/menu/create", "/cgi-bin/menu/addconditional",
                     "/cgi-bin/tags/create", "/cgi-bin/tags/members/batchtagging",
                     "/cgi-bin/tags/members/batchuntagging", "/cgi-bin/qrcode/create"):
            app.router.add_post(path, self.post)
        for path in ("/cgi-bin/menu/delete", "/cgi-bin/tags/get"):
            app.router.add_get(path, self.post)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @staticmethod
    def error(code: int, message: str = "") -> web.Response:
        return web.json_response({"errcode": code, "errmsg": message or f"error {code}"})

    async def token(self, request: web.Request) -> web.Response:
        self.calls.append("/cgi-bin/token")
        self.token_requests += 1
        if self.quota:
            return self.error(45009, "reach max api daily quota limit")
        q = request.query
        if q.get("grant_type") != "client_credential" or q.get("appid") != self.app_id:
            return self.error(40013, "invalid appid")
        if q.get("secret") != self.secret:
            return self.error(40125, "invalid appsecret")
        token = f"TOKEN-{next(self._serial)}-{secrets.token_hex(4)}"
        self.tokens = {token}  # a new token replaces the old one, as with WeChat's /cgi-bin/token
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def stable_token(self, request: web.Request) -> web.Response:
        """The stable token: the same one while it is valid, a new one only with force_refresh."""
        self.calls.append("/cgi-bin/stable_token")
        self.token_requests += 1
        body = json.loads(await request.read() or b"{}")
        if self.quota:
            return self.error(45009, "reach max api daily quota limit")
        if body.get("appid") != self.app_id or body.get("secret") != self.secret:
            return self.error(40125, "invalid appsecret")
        if not self.tokens or body.get("force_refresh"):
            self.tokens = {f"STABLE-{next(self._serial)}-{secrets.token_hex(4)}"}
        return web.json_response({"access_token": next(iter(self.tokens)), "expires_in": 7200})

    def _check(self, request: web.Request) -> web.Response | None:
        path = request.path
        self.calls.append(path)
        if self.quota:
            return self.error(45009, "reach max api daily quota limit")
        if request.query.get("access_token") not in self.tokens:
            return self.error(40001, "invalid credential, access_token is invalid or not latest")
        if self.failures.get(path):
            return self.error(self.failures[path].pop(0))
        return None

    async def media_get(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused is not None:
            return refused
        media = self.media.get(request.query.get("media_id", ""))
        if media is None:
            return web.Response(text=json.dumps({"errcode": 40007, "errmsg": "invalid media_id"}),
                                content_type="text/plain")
        data, content_type = media
        return web.Response(body=data, content_type=content_type)

    async def post(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        refused = self._check(request)
        if refused is not None:
            return refused
        body = json.loads(await request.read() or b"{}") if request.method == "POST" else {}
        path = request.path
        touser = body.get("touser")
        if touser in self.unfollowed:
            return self.error(43004, "require subscribe")
        if path.endswith("/custom/send"):
            if touser in self.window_closed:
                return self.error(45015, "response out of time limit or subscription is canceled")
            self.sent.append(body)
        elif path.endswith("/template/send"):
            self.templates.append(body)
            return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._serial)})
        elif path.endswith("/bizsend"):
            self.subscribe_messages.append(body)
        elif path.endswith("/menu/create"):
            self.menus.append(body)
        elif path.endswith("/menu/delete"):
            self.menus.clear()
            self.conditional_menus.clear()
        elif path.endswith("/addconditional"):
            self.conditional_menus.append(body)
            return web.json_response({"menuid": next(self._serial)})
        elif path.endswith("/tags/get"):
            return web.json_response({"tags": [{"id": k, "name": v, "count": len(self.tagged[k])} for k, v in self.tags.items()]})
        elif path.endswith("/tags/create"):
            tag_id = 100 + len(self.tags)
            self.tags[tag_id] = body["tag"]["name"]
            return web.json_response({"tag": {"id": tag_id, "name": body["tag"]["name"]}})
        elif path.endswith("/batchtagging"):
            self.tagged[int(body["tagid"])].update(body["openid_list"])
        elif path.endswith("/batchuntagging"):
            self.tagged[int(body["tagid"])].difference_update(body["openid_list"])
        elif path.endswith("/qrcode/create"):
            scene = body["action_info"]["scene"]["scene_str"]
            return web.json_response({"ticket": f"gQ-{scene}", "url": f"http://weixin.qq.com/q/{scene}"})
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class WeChatServerClient:
    """Posts messages to the bot's `/wechat` endpoint as WeChat's servers do."""

    def __init__(self, http: aiohttp.ClientSession, url: str, *, token: str = TOKEN, aes_key: str | None = None,
                 app_id: str = APP_ID):
        self.http, self.url, self.token, self.aes_key, self.app_id = http, url, token, aes_key, app_id
        self.msg_ids = MSG_IDS
        self.clock_offset = 0  # seconds added to the timestamp (to test stale requests)

    def signed_query(self, body_signature_of: str | None = None) -> dict[str, str]:
        timestamp = str(int(time.time()) + self.clock_offset)
        nonce = secrets.token_hex(5)
        return {"signature": sha1_signature(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}

    async def verify(self, echostr: str = "echo-123") -> tuple[int, str]:
        query = self.signed_query() | {"echostr": echostr}
        async with self.http.get(self.url, params=query) as response:
            return response.status, await response.text()

    async def post_xml(self, xml: str, *, query: dict[str, str] | None = None,
                       msg_signature: str | None = None) -> tuple[int, str]:
        query = query or self.signed_query()
        body = xml.encode("utf-8")
        if self.aes_key:
            encrypted = encrypt(self.aes_key, self.app_id, xml)
            query = query | {"encrypt_type": "aes", "openid": "x",
                             "msg_signature": msg_signature or sha1_signature(self.token, query["timestamp"], query["nonce"], encrypted)}
            body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
        async with self.http.post(self.url, params=query, data=body, headers={"Content-Type": "text/xml"}) as response:
            return response.status, await response.text()

    @staticmethod
    def xml(openid: str, msg_type: str, fields: dict[str, Any], *, msg_id: int | None = None,
            create_time: int | None = None) -> str:
        parts = [f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>", f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
                 f"<CreateTime>{create_time or int(time.time())}</CreateTime>", f"<MsgType><![CDATA[{msg_type}]]></MsgType>"]
        for key, value in fields.items():
            parts.append(f"<{key}>{value}</{key}>" if isinstance(value, (int, float)) else f"<{key}><![CDATA[{value}]]></{key}>")
        if msg_id is not None:
            parts.append(f"<MsgId>{msg_id}</MsgId>")
        return "<xml>" + "".join(parts) + "</xml>"

    async def text(self, openid: str, content: str, *, menu_id: str | None = None, msg_id: int | None = None):
        fields: dict[str, Any] = {"Content": content}
        if menu_id is not None:
            fields["bizmsgmenuid"] = menu_id
        return await self.post_xml(self.xml(openid, "text", fields, msg_id=msg_id or next(self.msg_ids)))

    async def location(self, openid: str, latitude: float, longitude: float, label: str = ""):
        return await self.post_xml(self.xml(openid, "location", {
            "Location_X": latitude, "Location_Y": longitude, "Scale": 15, "Label": label or "拉萨市"},
            msg_id=next(self.msg_ids)))

    async def image(self, openid: str, media_id: str):
        return await self.post_xml(self.xml(openid, "image", {
            "PicUrl": "http://mmbiz.qpic.cn/fake", "MediaId": media_id}, msg_id=next(self.msg_ids)))

    async def voice(self, openid: str, media_id: str, recognition: str | None = None):
        fields = {"MediaId": media_id, "Format": "amr"}
        if recognition is not None:
            fields["Recognition"] = recognition
        return await self.post_xml(self.xml(openid, "voice", fields, msg_id=next(self.msg_ids)))

    async def video(self, openid: str):
        return await self.post_xml(self.xml(openid, "video", {"MediaId": "v1", "ThumbMediaId": "t1"},
                                            msg_id=next(self.msg_ids)))

    async def event(self, openid: str, event: str, key: str | None = None, *, create_time: int | None = None):
        fields = {"Event": event}
        if key is not None:
            fields["EventKey"] = key
        return await self.post_xml(self.xml(openid, "event", fields, create_time=create_time))


def escape_text(text: str) -> str:
    return escape(text)
