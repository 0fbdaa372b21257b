"""Checking and reading what WeChat POSTs: signature, timestamp, safe-mode decryption, safe XML.

Every XML body goes through defusedxml with DTDs forbidden before anything else
reads it (no external entities, no entity expansion bombs); wechatpy then parses the
message it carries (`parse_message`) and decrypts safe-mode envelopes (`WeChatCrypto`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.utils import WeChatSigner

from .config import WeChatConfig

MAX_BODY = 64 * 1024  # WeChat's messages are a few hundred bytes
MAX_CLOCK_SKEW = 300  # seconds: an older (or future) timestamp is a replay


class Refused(Exception):
    """The request is not from WeChat (403) or not a message we can read (400)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce, *extra)
    return signer.signature


def check_request(config: WeChatConfig, query: dict[str, str], now: float | None = None) -> None:
    """The plain signature over token, timestamp and nonce, and a fresh timestamp; raises Refused(403)."""
    timestamp, nonce, given = query.get("timestamp", ""), query.get("nonce", ""), query.get("signature", "")
    if not (timestamp.isdigit() and nonce and given):
        raise Refused(403, "missing signature, timestamp or nonce")
    if not hmac.compare_digest(signature(config.token, timestamp, nonce).encode(), given.encode("utf-8", "replace")):
        raise Refused(403, "wrong signature")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
        raise Refused(403, "timestamp too old")


def safe_xml(body: bytes) -> dict[str, str]:
    """The top-level fields of an XML document; DTDs, entities and malformed XML raise Refused(400)."""
    if len(body) > MAX_BODY:
        raise Refused(400, "body too large")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, SyntaxError):
        raise Refused(400, "not well-formed XML, or XML with a DTD or entities") from None
    if root.tag != "xml":
        raise Refused(400, "not a WeChat message")
    return {child.tag: (child.text or "") for child in root}


@dataclass
class Incoming:
    """One message or event from WeChat, checked and parsed."""

    message: BaseMessage
    fields: dict[str, str]

    @property
    def openid(self) -> str:
        return self.fields.get("FromUserName", "")

    @property
    def kind(self) -> str:
        """The message type (text, image, …), or for events the event (subscribe, subscribe_scan, click, …)."""
        if self.message.type == "event":
            return getattr(self.message, "event", "") or "event:" + self.fields.get("Event", "").lower()
        return self.message.type

    def update_id(self, app_id: str) -> str:
        """Messages by MsgId; events (no MsgId) by sender and CreateTime, as WeChat's docs advise."""
        msg_id = self.fields.get("MsgId") or self.fields.get("MsgID")
        if msg_id and self.fields.get("MsgType") != "event":
            return f"{app_id}:{msg_id[:32]}"
        # Openids have 28 characters: hashed with the event, the id fits the 64 characters kept.
        who = hashlib.sha256(f"{self.openid}|{self.fields.get('Event', '')}".encode()).hexdigest()[:24]
        return f"{app_id}:e:{self.fields.get('CreateTime', '')[:12]}:{who}"


def read_message(config: WeChatConfig, query: dict[str, str], body: bytes) -> Incoming:
    """Check the request (see check_request) and return the message it carries."""
    check_request(config, query)
    fields = safe_xml(body)
    if query.get("encrypt_type") == "aes" or "Encrypt" in fields and config.aes_key:
        if not config.aes_key:
            raise Refused(400, "encrypted message but WECHAT_AES_KEY is not set")
        crypto = WeChatCrypto(config.token, config.aes_key, config.app_id)
        try:
            plain = crypto.decrypt_message({"Encrypt": fields.get("Encrypt", "")}, query.get("msg_signature", ""),
                                           query["timestamp"], query["nonce"])
        except (InvalidSignatureException, InvalidAppIdException):
            raise Refused(403, "wrong message signature or app id") from None
        except Exception:
            raise Refused(400, "cannot decrypt the message") from None
        fields = safe_xml(plain.encode("utf-8") if isinstance(plain, str) else plain)
        body = plain.encode("utf-8") if isinstance(plain, str) else plain
    elif config.aes_key:
        raise Refused(403, "plaintext message refused in safe mode")
    if not fields.get("FromUserName") or not fields.get("MsgType"):
        raise Refused(400, "not a WeChat message")
    if len(fields["FromUserName"]) > 64:
        raise Refused(400, "not a WeChat message")
    try:
        message = parse_message(body)
    except Exception:
        raise Refused(400, "not a WeChat message") from None
    return Incoming(message=message, fields=fields)


def field(message: BaseMessage, name: str, default: Any = None) -> Any:
    """A field wechatpy does not name (e.g. bizmsgmenuid of a tapped menu option)."""
    return getattr(message, "_data", {}).get(name, default)
