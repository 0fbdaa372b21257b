"""Language tools against the test sets in tests/language_samples.py.

    python -m bench.bench_language

* Wylie recognition (`conversations.text.wylie_to_tibetan`): precision and recall of "this is
  Wylie" over real Wylie sentences and pinyin / English / mixed sentences.
* Matter suggestion (`storage.matters.rank`, the published demo list in storage/data/matters.yaml):
  top-3 and top-1 accuracy per language, beside the literal keyword match it replaced.
Results: a Markdown table on stdout and bench/results/language.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from conversations.text import wylie_to_tibetan
from storage.models import Matter
from storage.matters import rank
from tests.language_samples import CHINESE_MATTERS, NOT_WYLIE, TIBETAN_MATTERS, WYLIE

ROOT = Path(__file__).resolve().parent.parent


def demo_matters() -> list[Matter]:
    data = yaml.safe_load((ROOT / "storage" / "data" / "matters.yaml").read_text(encoding="utf-8"))
    return [Matter(code=m["code"], name_zh=m["name_zh"], name_bo=m["name_bo"], description_zh=m.get("description_zh", ""),
                   description_bo=m.get("description_bo", ""), keywords_zh=m.get("keywords_zh", []),
                   keywords_bo=m.get("keywords_bo", []))
            for m in data["matters"] if not m.get("withdrawn")]


def wylie_figures() -> dict:
    true_positive = sum(1 for s in WYLIE if wylie_to_tibetan(s))
    false_positive = sum(1 for s in NOT_WYLIE if wylie_to_tibetan(s))
    return {
        "wylie_sentences": len(WYLIE), "other_sentences": len(NOT_WYLIE),
        "precision": true_positive / max(true_positive + false_positive, 1),
        "recall": true_positive / len(WYLIE),
    }


def literal_score(matter: Matter, text: str) -> int:
    """The matcher this replaced: keyword substrings (zh), whole-syllable keywords (bo)."""
    syllables = [s for s in re.split(r"[\u0f0b-\u0f14\s]+", text) if s]
    total = sum(len(k) for k in matter.keywords_zh + [matter.name_zh] if k and k in text)
    for keyword in matter.keywords_bo + [matter.name_bo]:
        wanted = [s for s in re.split(r"[\u0f0b-\u0f14\s]+", keyword) if s]
        n = len(wanted)
        if n and any(syllables[i:i + n] == wanted for i in range(len(syllables) - n + 1)):
            total += 2 * n
    return total


def matter_figures(listed: list[Matter]) -> dict:
    figures = {}
    for language, sample in (("zh", CHINESE_MATTERS), ("bo", TIBETAN_MATTERS)):
        top3 = top1 = literal = 0
        for text, code in sample:
            ranked = [m.code for _, m in rank(listed, text)]
            top3 += code in ranked[:3]
            top1 += ranked[:1] == [code]
            old = sorted(((literal_score(m, text), m.code) for m in listed), key=lambda p: (-p[0], p[1]))
            literal += code in [c for s, c in old[:3] if s > 0]
        figures[language] = {"sentences": len(sample), "top3": top3 / len(sample), "top1": top1 / len(sample),
                             "literal_top3": literal / len(sample)}
    return figures


def main() -> None:
    wylie = wylie_figures()
    matters = matter_figures(demo_matters())
    print("| Wylie recognition | sentences | precision | recall |\n|---|---:|---:|---:|")
    print(f"| real Wylie vs pinyin/English/mixed | {wylie['wylie_sentences']} + {wylie['other_sentences']} | "
          f"{wylie['precision']:.0%} | {wylie['recall']:.0%} |\n")
    print("| matter suggestion | sentences | top-3 | top-1 | literal match top-3 (before) |\n|---|---:|---:|---:|---:|")
    for language, f in matters.items():
        print(f"| {language} | {f['sentences']} | {f['top3']:.0%} | {f['top1']:.0%} | {f['literal_top3']:.0%} |")
    out = ROOT / "bench" / "results" / "language.json"
    out.write_text(json.dumps({"wylie": wylie, "matters": matters}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
