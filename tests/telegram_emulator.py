"""Test harness for the Telegram front door: the npm Bot API emulator, a correcting proxy,
fake Telegram users, and a fake Bot API for the methods the emulator lacks.

    bot (python-telegram-bot) ──HTTP──▶ FixingProxy ──HTTP──▶ telegram-test-api 4.2.1 (node)
    FakeUser (this file)      ─────────client API─────────▶ telegram-test-api

The emulator (tests/e2e/emulator.js, installed with `npm install --prefix tests/e2e`)
differs from the real Bot API in a few ways that break python-telegram-bot v22. They
are corrected HERE, in the proxy's responses, never in the bot (`FixingProxy.fix`):

1. getMe has no `is_bot`                      → add `"is_bot": true`.
2. message `date`s are in milliseconds        → any `date` above 10^11 is divided by 1000.
3. callback queries have no `chat_instance`   → add one (the user id), and give the
   callback's `message` a `message_id`, `date` and `chat` when they are missing.
4. editMessageText / editMessageReplyMarkup return `result: null`
                                              → return the edited message, built from the request.
5. deleteMessage can delete a person's unread callback query instead of the bot's message
   (a callback query takes the message id the bot's next message will get)
                                              → the proxy answers deleteMessage itself (true)
                                                and records it in `deleted`.
Faults: `faults` makes the proxy answer chosen calls with 429 or 500 instead of forwarding them,
or forward them and answer 502 (a lost answer), for the fault tests.

Webhook mode: the emulator pushes updates without the `X-Telegram-Bot-Api-Secret-Token`
header, and a non-2xx answer to its push crashes it. So the proxy takes the bot's
setWebhook (remembering the URL and secret), registers itself with the emulator instead,
and relays each push to the bot with the secret header and corrections 2 and 3, always
answering the emulator 200.

6. The emulator has no sendPhoto, sendVoice, sendLocation or getFile (HTTP 500)
                                              → the proxy answers them itself: sends are recorded in
                                                `media` (with the uploaded bytes), getFile and the file
                                                download serve what a fake user sent (`FixingProxy.files`).

The emulator answers only getMe, getUpdates, sendMessage, deleteMessage,
answerCallbackQuery, editMessageText, editMessageReplyMarkup, setWebhook and
deleteWebhook (others: HTTP 500). Its getUpdates ignores offset and timeout: poll with
a small poll_interval. `FakeBotApi` covers sendPhoto, getFile (and the file download)
and setMyCommands for the PTB-level tests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web

from tests.media_samples import sample_jpeg

E2E_DIR = Path(__file__).resolve().parent / "e2e"
EMULATOR_JS = E2E_DIR / "emulator.js"
EMULATOR_PACKAGE = E2E_DIR / "node_modules" / "telegram-test-api"
INSTALL_COMMAND = "npm install --prefix tests/e2e"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def emulator_unavailable() -> str | None:
    """Why the emulator cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed: the Telegram end-to-end tests need Node.js and `" + INSTALL_COMMAND + "`"
    if not EMULATOR_PACKAGE.exists():
        return f"telegram-test-api is not installed: run `{INSTALL_COMMAND}`"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_tokens = itertools.count(1)


def new_token() -> str:
    """A bot token of the real shape; each test gets its own, so the emulator's stores never mix."""
    return f"{700000 + next(_tokens)}:TEST{random.randrange(16**12):012x}"


# -- the emulator process ------------------------------------------------------------------------


class Emulator:
    """`node tests/e2e/emulator.js PORT`, started and stopped from Python."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> Emulator:
        reason = emulator_unavailable()
        if reason:
            raise RuntimeError(reason)
        self.process = subprocess.Popen(
            ["node", str(EMULATOR_JS), str(self.port)],
            cwd=E2E_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if "listening" in line:
                return self
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the Telegram emulator did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# -- the correcting proxy -------------------------------------------------------------------------


def _seconds(value: Any) -> Any:
    """Correction 2: millisecond dates to seconds, anywhere in a JSON value."""
    if isinstance(value, dict):
        return {
            key: (item // 1000 if key == "date" and isinstance(item, int) and item > 10**11 else _seconds(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_seconds(item) for item in value]
    return value


def _fix_update(update: dict) -> dict:
    """Corrections 2 and 3 on one update."""
    update = _seconds(update)
    query = update.get("callback_query")
    if query is not None:
        user = query.get("from") or {}
        query.setdefault("chat_instance", str(user.get("id", 0)))
        message = query.get("message")
        if message is not None:
            message.setdefault("message_id", 1)
            message.setdefault("date", int(time.time()))
            message.setdefault("chat", {"id": user.get("id", 0), "type": "private"})
    return update


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve `app` on a free loopback port; returns the runner (to clean up) and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


class FixingProxy:
    """An aiohttp reverse proxy between the bot and the emulator that corrects the emulator's answers.

    `base_url` is what TELEGRAM_API_BASE_URL should be. `calls` counts Bot API methods
    by name; `pushes` records (update_id, status) of webhook pushes relayed to the bot.
    """

    def __init__(self, emulator_url: str, on_bot_message: Callable[[str, dict], None] | None = None):
        self.emulator_url = emulator_url.rstrip("/")
        self.on_bot_message = on_bot_message  # (chat id, message) once the emulator has stored a bot message
        self.calls: Counter[str] = Counter()
        self.webhooks: dict[str, tuple[str, str | None]] = {}
        self.pushes: list[tuple[int, int]] = []
        self.deleted: list[tuple[str, str]] = []  # (chat_id, message_id) the bot deleted
        # Faults to inject, in order, for the named method: (method, kind, retry_after), kind one of
        # "429" (flood control, not forwarded), "500" (not forwarded), "lost" (forwarded: the message
        # is delivered, but the bot gets 502, as when the answer is lost on the way back).
        self.faults: list[tuple[str, str, float]] = []
        self.injected: list[tuple[str, str]] = []  # (method, kind) of the faults answered
        self.files: dict[str, tuple[bytes, str]] = {}  # file id → (bytes, file path) a fake user sent
        self.media: list[SentMedia] = []  # photos, voice notes and locations the bot sent
        self._media_ids = itertools.count(100_000)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> FixingProxy:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/_push/{token}", self._push)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def add_file(self, file_id: str, data: bytes, file_path: str) -> None:
        """What getFile and the download answer for `file_id` (a fake user's photo or voice note)."""
        self.files[file_id] = (data, file_path)

    async def _file(self, request: web.Request) -> web.Response:
        wanted = request.match_info["path"]
        for data, file_path in self.files.values():
            if file_path == wanted:
                return web.Response(body=data)
        return web.Response(status=404)

    async def _answer_media(self, method: str, request: web.Request) -> web.Response:
        """6: sendPhoto / sendVoice / sendLocation / getFile, answered here."""
        params: dict[str, Any] = {}
        upload: bytes | None = None
        if request.content_type == "multipart/form-data":
            for key, value in (await request.post()).items():
                if isinstance(value, str):
                    params[key] = value
                else:
                    upload = value.file.read()
        elif request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(parse_qsl((await request.read()).decode()))
        if method == "getFile":
            file_id = str(params.get("file_id"))
            if file_id not in self.files:
                return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"},
                                         status=400)
            data, file_path = self.files[file_id]
            return web.json_response({"ok": True, "result": {
                "file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(data), "file_path": file_path}})
        chat_id = str(params.get("chat_id"))
        kind = {"sendPhoto": "photo", "sendVoice": "voice", "sendLocation": "location"}[method]
        sent = SentMedia(chat_id=chat_id, kind=kind, file_id=str(params.get(kind, "")) if upload is None else None,
                         data=upload, latitude=float(params["latitude"]) if "latitude" in params else None,
                         longitude=float(params["longitude"]) if "longitude" in params else None)
        self.media.append(sent)
        result: dict[str, Any] = {"message_id": next(self._media_ids), "date": int(time.time()),
                                  "chat": {"id": int(chat_id), "type": "private"}}
        new_id = sent.file_id or f"sent-{result['message_id']}"
        if kind == "photo":
            result["photo"] = [{"file_id": new_id, "file_unique_id": new_id, "width": 1, "height": 1}]
        elif kind == "voice":
            result["voice"] = {"file_id": new_id, "file_unique_id": new_id, "duration": 1}
        else:
            result["location"] = {"latitude": sent.latitude, "longitude": sent.longitude}
        return web.json_response({"ok": True, "result": result})

    async def _forward(self, request: web.Request) -> web.Response:
        path = request.match_info["tail"]
        token, _, method = path.removeprefix("bot").partition("/")
        self.calls[method] += 1
        if method in ("sendPhoto", "sendVoice", "sendLocation", "getFile"):
            return await self._answer_media(method, request)
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        params = dict(parse_qsl(body.decode())) if "x-www-form-urlencoded" in content_type else {}
        if not params and "json" in content_type and body:
            params = json.loads(body)
        if method == "setWebhook" and params.get("url"):
            self.webhooks[token] = (params["url"], params.get("secret_token"))
            params = {**params, "url": f"http://127.0.0.1:{self.port}/_push/{token}"}
            body, content_type = urlencode(params).encode(), "application/x-www-form-urlencoded"
        elif method == "deleteWebhook":
            self.webhooks.pop(token, None)
        elif method == "deleteMessage":  # 5
            self.deleted.append((str(params.get("chat_id")), str(params.get("message_id"))))
            return web.json_response({"ok": True, "result": True})
        fault = None
        if self.faults and self.faults[0][0] == method:
            _, fault, retry_after = self.faults.pop(0)
            self.injected.append((method, fault))
            if fault == "429":
                return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests",
                                          "parameters": {"retry_after": retry_after}}, status=429)
            if fault == "500":
                return web.json_response({"ok": False, "error_code": 500, "description": "Internal Server Error"},
                                         status=500)
        headers = {"Content-Type": content_type} if content_type else {}
        async with self._session.request(request.method, f"{self.emulator_url}/{path}", data=body or None,
                                         headers=headers, params=request.query) as response:
            raw = await response.read()
            status = response.status
        if fault == "lost":
            return web.json_response({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502)
        try:
            payload = json.loads(raw)
        except ValueError:
            return web.Response(status=status, body=raw)
        if isinstance(payload, dict) and payload.get("ok"):
            payload["result"] = self.fix(method, payload.get("result"), params)
            if method == "sendMessage" and self.on_bot_message is not None:
                markup = params.get("reply_markup")
                self.on_bot_message(str(params.get("chat_id")), {
                    "message_id": payload["result"].get("message_id"), "text": params.get("text", ""),
                    "reply_markup": json.loads(markup) if isinstance(markup, str) else (markup or {})})
        return web.json_response(payload, status=status)

    @staticmethod
    def fix(method: str, result: Any, params: dict) -> Any:
        """The corrections, numbered as in the module docstring."""
        if method == "getMe" and isinstance(result, dict):
            result = {**result, "is_bot": True}  # 1
        if method == "getUpdates" and isinstance(result, list):
            return [_fix_update(update) for update in result]  # 2, 3
        if method in ("editMessageText", "editMessageReplyMarkup") and result is None:  # 4
            result = {
                "message_id": int(params.get("message_id", 0)),
                "date": int(time.time()),
                "chat": {"id": int(params.get("chat_id", 0)), "type": "private"},
                "text": params.get("text", ""),
            }
        return _seconds(result)  # 2

    async def _push(self, request: web.Request) -> web.Response:
        """The emulator's webhook push, relayed to the bot with the secret header; always 200 to the emulator."""
        token = request.match_info["token"]
        update = _fix_update(await request.json())
        url, secret = self.webhooks.get(token, (None, None))
        status = 0
        if url:
            headers = {SECRET_HEADER: secret} if secret else {}
            try:
                async with self._session.post(url, json=update, headers=headers) as response:
                    status = response.status
            except aiohttp.ClientError:
                status = -1
        self.pushes.append((update.get("update_id", 0), status))
        return web.json_response({"ok": True})


# -- fake users ------------------------------------------------------------------------------------


@dataclass
class SentMedia:
    """A photo, voice note or location the bot sent (answered by the proxy, see correction 6)."""

    chat_id: str
    kind: str  # photo | voice | location
    file_id: str | None = None  # sent again by Telegram file id
    data: bytes | None = None  # or uploaded
    latitude: float | None = None
    longitude: float | None = None


@dataclass
class BotMessage:
    """A message the bot sent to one chat, as stored by the emulator."""

    message_id: int
    chat_id: int
    text: str
    markup: dict = field(default_factory=dict)

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback data) of the inline keyboard."""
        rows = self.markup.get("inline_keyboard") or []
        return [(b.get("text", ""), b.get("callback_data", "")) for row in rows for b in row]

    @property
    def button_data(self) -> list[str]:
        return [data for _, data in self.buttons]

    @property
    def reply_keyboard(self) -> list[dict]:
        return [b for row in self.markup.get("keyboard") or [] for b in row]

    @property
    def removes_keyboard(self) -> bool:
        return bool(self.markup.get("remove_keyboard"))


_user_ids = itertools.count(random.randrange(10**8, 2 * 10**8, 1000))


class FakeUser:
    """One Telegram user in a private chat with the bot, talking through the emulator's client API."""

    def __init__(self, session: aiohttp.ClientSession, emulator_url: str, token: str, *,
                 language_code: str | None = "zh", first_name: str = "测试"):
        self.session = session
        self.url = emulator_url.rstrip("/")
        self.token = token
        self.user_id = next(_user_ids)
        self.chat_id = self.user_id
        self.language_code = language_code
        self.first_name = first_name
        self.inbox: list[BotMessage] = []  # everything the bot sent to this chat, in order
        self.seen = 0  # how much of the inbox the last step consumed

    # what the person sends

    def _user(self) -> dict:
        user = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def _message(self, **fields) -> dict:
        return {
            "botToken": self.token,
            "from": self._user(),
            "chat": {"id": self.chat_id, "type": "private", "first_name": self.first_name},
            "date": int(time.time()),
            **fields,
        }

    async def _post(self, route: str, payload: dict) -> None:
        async with self.session.post(f"{self.url}/{route}", json=payload) as response:
            assert response.status == 200, f"emulator {route}: HTTP {response.status}"

    async def send(self, **fields) -> None:
        """Any message fields: text, location, contact, photo…"""
        self.seen = len(self.inbox)
        text = fields.get("text", "")
        if text.startswith("/"):
            command = text.split(" ", 1)[0]
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            await self._post("sendCommand", self._message(**fields))
        else:
            await self._post("sendMessage", self._message(**fields))

    async def say(self, text: str) -> None:
        await self.send(text=text)

    async def share_location(self, latitude: float, longitude: float) -> None:
        await self.send(location={"latitude": latitude, "longitude": longitude})

    async def share_contact(self, phone: str) -> None:
        await self.send(contact={"phone_number": phone, "first_name": self.first_name, "user_id": self.user_id})

    async def send_photo(self, file_id: str, size: int = 54321) -> None:
        await self.send(photo=[
            {"file_id": f"{file_id}-small", "file_unique_id": f"{file_id}-s", "width": 90, "height": 60, "file_size": 1200},
            {"file_id": file_id, "file_unique_id": f"{file_id}-l", "width": 1280, "height": 853, "file_size": size},
        ])

    async def send_voice(self, file_id: str, duration: int = 5, size: int = 4000) -> None:
        await self.send(voice={"file_id": file_id, "file_unique_id": f"{file_id}-u", "duration": duration,
                               "mime_type": "audio/ogg", "file_size": size})

    def message_with(self, data: str) -> BotMessage:
        for message in reversed(self.inbox):
            if data in message.button_data:
                return message
        raise AssertionError(f"no button {data!r} in chat {self.chat_id}; last buttons: "
                             f"{[m.button_data for m in self.inbox[-3:]]}")

    async def press(self, data: str) -> None:
        """Press an inline button the bot sent (it must be on screen), as Telegram would report it."""
        message = self.message_with(data)
        self.seen = len(self.inbox)
        await self._post("sendCallback", {
            "botToken": self.token,
            "from": self._user(),
            "message": {"message_id": message.message_id, "date": int(time.time()),
                        "chat": {"id": self.chat_id, "type": "private"}, "text": message.text},
            "data": data,
        })

    # what the bot sent

    async def fetch(self) -> list[BotMessage]:
        """The bot's messages to this chat not fetched before (the emulator marks them read)."""
        async with self.session.post(f"{self.url}/getUpdates", json={"token": self.token, "chatId": self.chat_id}) as response:
            payload = await response.json()
        new = [
            BotMessage(item["messageId"], int(item["message"]["chat_id"]), item["message"].get("text", ""),
                       item["message"].get("reply_markup") or {})
            for item in sorted(payload.get("result", []), key=lambda i: i["messageId"])
        ]
        self.inbox.extend(new)
        return new

    @property
    def latest(self) -> list[BotMessage]:
        """What arrived since the last thing this user sent."""
        return self.inbox[self.seen:]

    @property
    def text(self) -> str:
        return "\n".join(m.text for m in self.latest)

    @property
    def buttons(self) -> list[str]:
        return [d for m in self.latest for d in m.button_data]

    async def wait_for(self, condition: Callable[[FakeUser], bool] | str, timeout: float = 10, interval: float = 0.02) -> None:
        """Poll until `condition(self)` holds; a string means 'a button with this data arrived'."""
        check = (lambda u: condition in u.buttons) if isinstance(condition, str) else condition
        deadline = time.monotonic() + timeout
        while True:
            await self.fetch()
            if check(self):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting in chat {self.chat_id}; since the last step the bot sent:\n{self.text}\n"
                    f"buttons: {self.buttons}"
                )
            await asyncio.sleep(interval)


# -- a fake Bot API for the methods the emulator lacks -------------------------------------------------


class FakeBotApi:
    """A minimal Bot API over HTTP (getMe, sendMessage, sendPhoto, getFile + file download,
    setMyCommands, setWebhook, answerCallbackQuery, deleteMessage) that records every call.

    `fail[method] = (http_status, body)` makes a method fail, e.g. (429, {"ok": False,
    "error_code": 429, "description": "Too Many Requests", "parameters": {"retry_after": 7}}).
    """

    FILE_BYTES = sample_jpeg()

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.fail: dict[str, tuple[int, dict]] = {}
        self.downloads = 0
        self.port = 0
        self._messages = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def called(self, method: str) -> list[dict]:
        return [params for name, params in self.calls if name == method]

    async def start(self) -> FakeBotApi:
        app = web.Application()
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _file(self, request: web.Request) -> web.Response:
        self.downloads += 1
        return web.Response(body=self.FILE_BYTES, content_type="image/jpeg")

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "multipart/form-data":
            params = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        elif request.can_read_body:
            params = dict(parse_qsl((await request.read()).decode()))
        else:
            params = dict(request.query)
        for key in ("reply_markup", "commands", "allowed_updates"):
            if key in params:
                params[key] = json.loads(params[key])
        self.calls.append((method, params))
        if method in self.fail:
            status, body = self.fail[method]
            return web.json_response(body, status=status)
        now = int(time.time())
        if method == "getMe":
            result: Any = {"id": 4242, "is_bot": True, "first_name": "GridBot", "username": "GridTestBot"}
        elif method in ("sendMessage", "sendPhoto", "sendVoice", "sendLocation"):
            result = {"message_id": next(self._messages), "date": now,
                      "chat": {"id": int(params.get("chat_id", 0)), "type": "private"}}
            if method == "sendMessage":
                result["text"] = params.get("text", "")
            elif method == "sendPhoto":
                result["photo"] = [{"file_id": params.get("photo", "up"), "file_unique_id": "u", "width": 1, "height": 1}]
            elif method == "sendVoice":
                result["voice"] = {"file_id": params.get("voice", "up"), "file_unique_id": "v", "duration": 1}
            else:
                result["location"] = {"latitude": float(params.get("latitude", 0)), "longitude": float(params.get("longitude", 0))}
        elif method == "getFile":
            result = {"file_id": params.get("file_id"), "file_unique_id": "unique-1",
                      "file_size": len(self.FILE_BYTES), "file_path": "photos/file_1.jpg"}
        elif method == "getUpdates":
            await asyncio.sleep(0.05)
            result = []
        else:
            result = True
        return web.json_response({"ok": True, "result": result})


def update_json(update_id: int, user_id: int, **payload) -> dict:
    """A Bot API Update as Telegram sends it: `message={...}` (text, photo…) or `callback_query` data."""
    user = {"id": user_id, "is_bot": False, "first_name": "测试", "language_code": "zh"}
    chat = {"id": user_id, "type": "private", "first_name": "测试"}
    if "data" in payload:
        return {"update_id": update_id, "callback_query": {
            "id": f"cb{update_id}", "from": user, "chat_instance": str(user_id), "data": payload["data"],
            "message": {"message_id": 1, "date": int(time.time()), "chat": chat, "text": "…"}}}
    return {"update_id": update_id, "message": {"message_id": update_id, "date": int(time.time()),
                                                 "from": user, "chat": chat, **payload}}


if __name__ == "__main__":  # pragma: no cover - manual use: start the emulator and wait
    emulator = Emulator(int(os.environ.get("TELEGRAM_EMULATOR_PORT", "9000"))).start()
    print(f"emulator on {emulator.url}; Ctrl+C to stop")
    try:
        emulator.process.wait()
    except KeyboardInterrupt:
        emulator.stop()
