"""The Telegram front door: a python-telegram-bot v22 adapter for the platform-neutral dialogs.

* `adapter.TelegramFrontDoor`: builds the PTB `Application`, polling or webhook mode.
* `handlers`: one small handler per kind of update, each turning it into an `Inbound`.
* `render`: `Reply` objects into Telegram messages (inline keyboards, reply keyboards, long texts).
* `channel.TelegramChannel`: what the notification dispatcher sends through.
"""
