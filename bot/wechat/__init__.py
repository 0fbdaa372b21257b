"""The WeChat Official Account front door (微信公众号): another adapter for the platform-neutral dialogs.

* `adapter.WeChatFrontDoor`: the `/wechat` endpoint (URL check, messages in plaintext and safe mode).
* `inbound`: signatures, timestamps, safe XML (defusedxml), decryption and parsing (wechatpy).
* `render`: `Reply` objects into customer-service messages (numbered menu messages for buttons).
* `channel.WeChatChannel`: notices by customer-service, template or subscribe message.
* `api.WeChatAPI`: WeChat's HTTP API over aiohttp, with the access token shared by all instances.
* `followers`: the 48-hour window and numbered options per follower, in the database.
* `menu`: the account's custom menu (`gridbot wechat menu`).
"""
