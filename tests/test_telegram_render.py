"""Rendering replies for Telegram: long texts, callback data, inline and reply keyboards."""

from __future__ import annotations

import unicodedata

from telegram import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove

from bot.telegram.render import (
    MAX_TEXT,
    REMOVE_PLACEHOLDER,
    KeyboardMemory,
    inline_keyboard,
    render,
    split_text,
    utf16_len,
)
from conversations.protocol import Button, Reply


def test_short_text_is_one_part():
    assert split_text("路灯坏了") == ["路灯坏了"]


def test_long_text_splits_at_lines_within_the_limit():
    text = "\n".join(f"• 第{i}行：路灯不亮，已经三天了。" for i in range(400))
    parts = split_text(text)
    assert len(parts) > 1 and all(utf16_len(p) <= MAX_TEXT for p in parts)
    assert "\n".join(parts) == text  # nothing lost, split where a line ended


def test_limit_counts_utf16_units_and_keeps_tibetan_stacks_whole():
    emoji = "📍" * 3000  # 2 UTF-16 units each
    assert all(utf16_len(p) <= MAX_TEXT for p in split_text(emoji))
    stacks = "སྒྲོ" * 3000  # no spaces or tsheg: a hard cut, never before a vowel sign or subjoined letter
    parts = split_text(stacks)
    assert "".join(parts) == stacks
    assert all(unicodedata.category(p[0])[0] != "M" for p in parts)


def test_callback_data_over_64_bytes_is_left_out():
    markup = inline_keyboard([[Button("ok", "case:LS-20261124-0042"), Button("too long", "place:" + "ས" * 30)]])
    assert [b.callback_data for row in markup.inline_keyboard for b in row] == ["case:LS-20261124-0042"]
    assert inline_keyboard([[Button("x", "y" * 65)]]) is None


def test_location_request_without_inline_buttons_rides_on_the_text():
    out, shown = render([Reply("Where?", request_location=True, location_label="📍 Share")])
    assert len(out) == 1 and isinstance(out[0].markup, ReplyKeyboardMarkup) and shown
    assert out[0].markup.keyboard[0][0].request_location and out[0].markup.one_time_keyboard


def test_location_request_with_inline_buttons_gets_its_own_message():
    reply = Reply("Where?", [[Button("Back", "nav:back")]], request_location=True, location_label="📍 Share")
    out, shown = render([reply])
    assert [type(m.markup) for m in out] == [InlineKeyboardMarkup, ReplyKeyboardMarkup] and out[1].text == "📍 Share"


def test_contact_request():
    out, _ = render([Reply("Phone?", [[Button("Anonymous", "phone:anonymous")]], request_contact=True, contact_label="📞")])
    assert out[1].markup.keyboard[0][0].request_contact


def test_keyboard_removed_on_the_first_plain_message_or_by_a_placeholder():
    out, shown = render([Reply("Grid: G1"), Reply("Address?", [[Button("Skip", "address:skip")]])], keyboard_shown=True)
    assert isinstance(out[0].markup, ReplyKeyboardRemove) and not shown
    out, shown = render([Reply("Check", [[Button("Submit", "confirm:submit")]])], keyboard_shown=True)
    assert out[-1].text == REMOVE_PLACEHOLDER and out[-1].delete_after and not shown
    out, shown = render([Reply("Check", [[Button("Submit", "confirm:submit")]])], keyboard_shown=False)
    assert len(out) == 1


def test_nothing_to_say_sends_nothing():
    assert render([], keyboard_shown=True) == ([], True)  # a repeated update


def test_keyboard_memory_is_bounded():
    memory = KeyboardMemory(size=2)
    for chat in (1, 2, 3):
        memory.set(chat, True)
    assert 1 not in memory and 2 in memory and 3 in memory
    memory.set(3, False)
    assert 3 not in memory
