"""The language tools as residents meet them: Wylie that works, matters found from plain words, one detector."""

from __future__ import annotations

import pytest

from bench.bench_language import demo_matters, matter_figures, wylie_figures
from conversations.text import wylie_to_tibetan
from storage.matters import rank
from storage.words import detect_language


@pytest.mark.parametrize("typed, tibetan", [
    ("nyin 3 ring lam sgron 'bar gyi mi 'dug", "ཉིན་༣་རིང་ལམ་སྒྲོན་འབར་གྱི་མི་འདུག"),
    ("g.yas phyogs kyi lam sgron chag 'dug", "གཡས་ཕྱོགས་ཀྱི་ལམ་སྒྲོན་ཆག་འདུག"),
    ("a ma'i khang pa", "ཨ་མའི་ཁང་པ"),
    ("Lam sgron chag song, mun pa red", "ལམ་སྒྲོན་ཆག་སོང་། མུན་པ་རེད"),
    ("LAM SGRON CHAG SONG.", "ལམ་སྒྲོན་ཆག་སོང་།"),
])
def test_real_wylie_is_recognised_with_digits_punctuation_and_any_case(typed, tibetan):
    assert wylie_to_tibetan(typed) == tibetan


@pytest.mark.parametrize("typed", ["ta ma de lu deng", "go to bed", "lu deng huai le", "the light is broken", "ni hao"])
def test_pinyin_and_english_are_not_offered_as_tibetan(typed):
    assert wylie_to_tibetan(typed) is None


def test_wylie_precision_and_recall_on_the_test_set():
    figures = wylie_figures()
    assert figures["wylie_sentences"] >= 20 and figures["other_sentences"] >= 20
    assert figures["precision"] >= 0.95 and figures["recall"] >= 0.9, figures


def test_a_pothole_described_in_plain_words_finds_the_road_matter():
    ranked = rank(demo_matters(), "路面有一个大坑，车辆经过很危险")
    assert ranked[0][1].code == "GM-0603"  # 道路破损及坑洼


def test_matter_top3_accuracy_on_the_test_set():
    figures = matter_figures(demo_matters())
    for language in ("zh", "bo"):
        assert figures[language]["sentences"] >= 30
        assert figures[language]["top3"] >= 0.9, figures


@pytest.mark.parametrize("text, language", [
    ("布达拉宫附近的ལམ་སྒྲོན་坏了", "mixed"),
    ("布达拉宫附近的路灯坏了", "zh"),
    ("ལམ་སྒྲོན་ཆག་སོང་།", "bo"),
    ("ལྷ་སའི་ཁྲོམ་གཞུང་གི་ལམ་སྒྲོན་ཆག་སོང་། 2号楼", "bo"),
    ("路灯坏了 LS-20261124-0042", "zh"),
    ("12345 ok", None),
])
def test_one_detector_by_words(text, language):
    assert detect_language(text) == language
