"""How indicators read in the chat, the bulletin and the console: names, and figures as text."""

from __future__ import annotations

from storage import indicators
from storage.indicators import Indicators

from .i18n import N_, TIBETAN_DIGITS, translate

DASH = "—"

# The indicators a bulletin shows, in order: (key, what it is, how to show it).
KEY_FIGURES: list[tuple[str, str, str]] = [
    ("reported", N_("Cases reported"), "count"),
    ("closed", N_("Cases closed"), "count"),
    ("due", N_("Cases due"), "count"),
    ("closed_on_time", N_("Closed on time"), "count"),
    ("overdue_open", N_("Overdue, still open"), "count"),
    ("closed_rate", N_("Closure rate"), "rate"),
    ("on_time_closed_rate", N_("On-time closure rate"), "rate"),
    ("rework_rate", N_("Rework rate"), "rate"),
    ("extension_rate", N_("Extension rate"), "rate"),
    ("return_rate", N_("Return rate"), "rate"),
    ("timely_verification_rate", N_("Timely verification rate"), "rate"),
    ("resolved_on_spot_rate", N_("Resolved on the spot rate"), "rate"),
    ("satisfaction_rate", N_("Satisfaction rate"), "rate"),
    ("time_to_accept", N_("Time to accept (median)"), "hours"),
    ("time_to_handle", N_("Time to handle (median)"), "hours"),
    ("time_to_verify", N_("Time to verify (median)"), "hours"),
    ("composite_score", N_("Composite score (out of 100)"), "score"),
]

def digits(language: str, text: str) -> str:
    return text.translate(TIBETAN_DIGITS) if language == "bo" else text


def value_of(figures: Indicators, key: str, weights) -> float | None:
    if key in indicators.RATES:
        return figures.rate(key)
    if key in indicators.TIMES:
        times = figures.times().get(key)
        return times["median_hours"] if times else None
    if key == "composite_score":
        return figures.composite_score(weights)
    return figures.counts[key]


def shown(language: str, value: float | None, kind: str) -> str:
    """A figure as a reader sees it: 66.7%, 2.5 hours, 61.3, 12; — when absent."""
    if value is None:
        return DASH
    if kind == "rate":
        return digits(language, f"{100 * value:.1f}%")
    if kind == "hours":
        return translate(language, "{hours} hours", hours=digits(language, f"{value:.1f}"))
    if kind == "score":
        return digits(language, f"{value:.1f}")
    return digits(language, str(int(value)))


def change(language: str, now: float | None, before: float | None, kind: str) -> str:
    if now is None or before is None:
        return DASH
    delta = now - before
    if kind == "rate":
        delta *= 100
    text = f"{delta:+.1f}" if kind != "count" else f"{int(delta):+d}"
    return digits(language, text)




def labelled(language: str, name: str, value: str) -> str:
    """'Name: value' with the language's own punctuation (a full-width colon in Chinese, a shad in Tibetan)."""
    if language == "zh":
        return f"{name}：{value}"
    return f"{name} {value}" if name.endswith("།") else f"{name}། {value}"
