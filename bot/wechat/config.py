"""WeChat settings, from WECHAT_* environment variables (see README, "WeChat Official Account")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_API_BASE_URL = "https://api.weixin.qq.com"
DEFAULT_PATH = "/wechat"
# Template message fields: our name → the keyword of the template chosen in the account's back office.
DEFAULT_TEMPLATE_FIELDS = "number:character_string1,step:thing2,time:time3"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def parse_fields(spec: str) -> dict[str, str]:
    """'number:keyword1,step:keyword2' → {'number': 'keyword1', 'step': 'keyword2'}."""
    fields = {}
    for item in spec.split(","):
        ours, _, theirs = item.strip().partition(":")
        if ours and theirs:
            fields[ours.strip()] = theirs.strip()
    return fields


@dataclass
class WeChatConfig:
    app_id: str
    app_secret: str
    token: str  # the server token that signs WeChat's requests
    aes_key: str | None = None  # EncodingAESKey (43 characters): safe mode
    api_base_url: str = DEFAULT_API_BASE_URL
    path: str = DEFAULT_PATH
    template_id: str | None = None  # template message for notices outside the 48-hour window
    template_fields: dict[str, str] = field(default_factory=lambda: parse_fields(DEFAULT_TEMPLATE_FIELDS))
    subscribe_template_id: str | None = None  # subscribe message (bizsend), tried after the template
    notice_url: str | None = None  # the case link in template messages; "{number}" is replaced
    ack_seconds: float = 2.0  # answer WeChat after this long at the latest (it gives up after 5 s)
    stable_token: bool = False  # /cgi-bin/stable_token: other systems using the account keep their token

    @classmethod
    def from_env(cls) -> WeChatConfig | None:
        """None unless WECHAT_APP_ID, WECHAT_APP_SECRET and WECHAT_TOKEN are all set."""
        app_id, secret, token = _env("WECHAT_APP_ID"), _env("WECHAT_APP_SECRET"), _env("WECHAT_TOKEN")
        if not (app_id and secret and token):
            return None
        path = _env("WECHAT_PATH", DEFAULT_PATH)
        return cls(
            app_id=app_id,
            app_secret=secret,
            token=token,
            aes_key=_env("WECHAT_AES_KEY"),
            api_base_url=_env("WECHAT_API_BASE_URL", DEFAULT_API_BASE_URL).rstrip("/"),
            path=path if path.startswith("/") else "/" + path,
            template_id=_env("WECHAT_TEMPLATE_ID"),
            template_fields=parse_fields(_env("WECHAT_TEMPLATE_FIELDS", DEFAULT_TEMPLATE_FIELDS)),
            subscribe_template_id=_env("WECHAT_SUBSCRIBE_TEMPLATE_ID"),
            notice_url=_env("WECHAT_NOTICE_URL"),
            ack_seconds=float(_env("WECHAT_ACK_SECONDS", "2.0")),
            stable_token=_env("WECHAT_TOKEN_API", "token") == "stable",
        )
