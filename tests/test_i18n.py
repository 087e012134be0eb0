"""The catalogues (obs_mindflow/data/locale/*.ini) and the words viewers read: every catalogue has every key of
en-US with the same placeholders, every word the code and the overlay page ask for exists, and the text source and
the overlay state speak the viewers' language."""

from __future__ import annotations

import json
import re

import pytest

from obs_mindflow import i18n
from obs_mindflow.engine import views
from tests.conftest import ROOT

EN = i18n.parse((i18n.LOCALE_DIR / "en-US.ini").read_text(encoding="utf-8"), "en-US.ini")
OTHERS = [lang for lang in i18n.LANGUAGES if lang != i18n.FALLBACK]


def catalogue(lang: str) -> dict[str, str]:
    return i18n.parse((i18n.LOCALE_DIR / f"{lang}.ini").read_text(encoding="utf-8"), f"{lang}.ini")


def test_the_shipped_catalogues_are_the_listed_languages():
    assert sorted(p.stem for p in i18n.LOCALE_DIR.glob("*.ini")) == sorted(i18n.LANGUAGES)
    assert {"en-US", "es-ES", "pt-BR", "de-DE", "fr-FR", "ru-RU", "ja-JP", "zh-CN"} <= set(i18n.LANGUAGES)


@pytest.mark.parametrize("lang", OTHERS)
def test_every_catalogue_has_every_key_with_the_same_placeholders(lang):
    texts = catalogue(lang)
    assert not sorted(set(EN) - set(texts)), f"{lang}.ini misses keys"
    assert not sorted(set(texts) - set(EN)), f"{lang}.ini has keys en-US.ini does not"
    changed = {k: (EN[k], v) for k, v in texts.items() if i18n.placeholders(v) != i18n.placeholders(EN[k])}
    assert not changed, f"{lang}.ini changes placeholders: {changed}"
    assert all(v.strip() for v in texts.values()), [k for k, v in texts.items() if not v.strip()]
    untranslated = [k for k, v in texts.items()           # the same words as in English: three or more
                    if v == EN[k] and len(re.findall(r"[A-Za-z]{2,}", re.sub(r"\{\w*\}", "", v))) >= 3]
    assert not untranslated, f"{lang}.ini keeps English: {untranslated}"


def test_a_catalogue_that_misses_a_key_or_changes_a_placeholder_is_caught():
    broken = dict(EN)
    key = next(k for k, v in EN.items() if i18n.placeholders(v))
    broken[key] = EN[key].replace("{", "(").replace("}", ")")
    assert i18n.placeholders(broken[key]) != i18n.placeholders(EN[key])
    del broken["emotion.happy"]
    assert set(EN) - set(broken) == {"emotion.happy"}


@pytest.mark.parametrize("text, expected", [
    ('a.b="Text"', {"a.b": "Text"}),
    ('a.b=Text', {"a.b": "Text"}),
    ('# comment\n; another\n\na="x \\"y\\"\\nz \\\\ w"', {"a": 'x "y"\nz \\ w'}),
    ('a="="', {"a": "="}),
])
def test_parse_reads_obs_locale_lines(text, expected):
    assert i18n.parse(text) == expected


def test_parse_refuses_a_line_without_a_key():
    with pytest.raises(i18n.CatalogError, match="line 2"):
        i18n.parse('a="x"\nno equals sign here', "x.ini")


@pytest.mark.parametrize("locale, expected", [
    ("de-DE", "de-DE"), ("de_DE", "de-DE"), ("de-AT", "de-DE"), ("pt-PT", "pt-BR"), ("zh-TW", "zh-CN"),
    ("ja-JP", "ja-JP"), ("ko-KR", "en-US"), ("", "en-US"), (None, "en-US"), ("en-GB", "en-US")])
def test_an_obs_locale_gets_the_nearest_catalogue(locale, expected):
    assert i18n.supported(locale) == expected


def test_a_missing_key_falls_back_to_english(monkeypatch):
    w = i18n.Words("de-DE")
    monkeypatch.setattr(w, "_texts", {k: v for k, v in w._texts.items() if k != "overlay.session"})
    assert w("overlay.session") == EN["overlay.session"] and w("overlay.recent") == "zuletzt"
    assert w.emotion("some-new-label") == "some-new-label"        # a label no catalogue names stays as it is


def test_every_word_the_code_asks_for_exists():
    page = (ROOT / "obs_mindflow" / "overlay" / "page.html").read_text(encoding="utf-8")
    asked = set(re.findall(r"\bT\('([\w.]+)', '", page))
    assert asked and not asked - set(EN), asked - set(EN)
    for card in (ROOT / "models").glob("*/card.json"):
        labels = json.loads(card.read_text(encoding="utf-8"))["labels"]
        assert all(f"emotion.{label}" in EN for label in labels), (card, labels)
    for state in ("uncertain", "no_face", "paused", "no_video"):
        assert f"emotion.{state}" in EN
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "obs_mindflow").rglob("*.py"))
    literal = set(re.findall(r"""(?:\bwords|\bui|\bw|\bSaid|\bsaid|\bui_words\(\)|\))\("([a-z]+\.[\w.]+)"(?=[,)])""",
                             code))
    literal |= set(re.findall(r'"((?:problem|notice|note)\.\w+)"', code))          # i18n.Said's, chosen by an if
    assert len(literal) > 60 and not literal - set(EN), literal - set(EN)
    built = {f"panel.{name}" for name in ("install_deps", "check_deps", "session", "refresh", "calibrate",
                                         "clear_calibration")}                     # panel.build's buttons
    built |= {f"status.packages_{state}" for state in ("installing", "missing", "installed")}   # the entry's
    built |= set(re.findall(r'"(panel\.\w+_empty)"', code))                         # panel.EMPTY_KEYS
    built |= {f"notice.{o}_{v}" for o in ("recording", "stream") for v in ("started", "stopped")}   # controller's
    built |= {f"notice.{k}_{what}" for k in ("nothing_to_open", "gone") for what in ("report", "history")}
    built |= {f"problem.{k}_{what}" for k in ("what", "then") for what in ("checkpoint", "report")}   # ReportError
    assert {k for k in EN if k.startswith(("problem.", "notice.", "note."))} <= literal | built, \
        {k for k in EN if k.startswith(("problem.", "notice.", "note."))} - literal - built       # none unused
    assert not built - set(EN), built - set(EN)


VALUES = {"emotion": "happy", "confidence": "83 %", "negative_share": "12 %", "rolling_negative": "9 %",
          "coverage": "96 %", "duration": "1 min", "dominant": "sad", "faces": "1", "rate": "5.0", "model": "m",
          "nudge": ""}


@pytest.mark.parametrize("lang, emotion, dominant", [("ja-JP", "喜び", "悲しみ"), ("de-DE", "Freude", "Trauer"),
                                                     ("en-US", "happy", "sad"), ("zh-CN", "高兴", "悲伤")])
def test_the_text_source_names_the_emotion_in_the_viewers_language(lang, emotion, dominant):
    out = views.viewer_text_values(VALUES, True, i18n.words(lang))
    assert (out["emotion"], out["dominant"], out["negative_share"], out["confidence"]) == (emotion, dominant, "",
                                                                                           "83 %")
    assert views.viewer_text_values({**VALUES, "emotion": "no face"}, False, i18n.words(lang))["emotion"] == \
        i18n.words(lang)("emotion.no_face")


def test_the_overlay_state_carries_the_viewers_language():
    state = {"paused": True, "message": "paused", "session": {"negative_share": 0.2}, "moment": None}
    out = views.viewer_overlay_state(state, True, i18n.words("fr-FR"))
    assert out["lang"] == "fr-FR" and out["strings"]["emotion.happy"] == "joie"
    assert out["strings"]["overlay.session"] == "Session" and out["message"] == "en pause"
    assert "negative_share" not in out["session"] and state["message"] == "paused"     # the input is not changed
    assert set(out["strings"]) == {k for k in EN if k.startswith(("overlay.", "emotion."))}
    assert "lang" not in views.viewer_overlay_state(state, False)                    # without words: as before


def test_every_moment_title_is_translated_on_the_overlay():
    from obs_mindflow.engine.session.moments import SPIKE, SUSTAINED, chapter_title

    labels = {label for card in (ROOT / "models").glob("*/card.json")
              for label in json.loads(card.read_text(encoding="utf-8"))["labels"]}
    ja = i18n.words("ja-JP")
    for label in labels:
        for negative in (False, True):
            for kind in (SUSTAINED, SPIKE):
                title = chapter_title(label, negative, kind)
                shown = views.moment_title({"title": title, "emotion": label}, ja)
                assert shown != title and not shown.isascii(), (label, negative, kind, title, shown)
    state = {"moment": {"id": 1, "title": "Big laugh", "emotion": "happy", "negative": False}, "session": {}}
    assert views.viewer_overlay_state(state, False, i18n.words("de-DE"))["moment"]["title"] == "Großes Lachen"
    assert state["moment"]["title"] == "Big laugh"


@pytest.mark.parametrize("lang, expected", [("ja-JP", "12 分 05 秒"), ("ru-RU", None), ("en-US", "12 min 05 s")])
def test_the_text_sources_duration_is_in_the_viewers_units(lang, expected):
    from types import SimpleNamespace

    session = SimpleNamespace(duration_s=725.2, negative_share=0.1, rolling_negative_share=None, coverage=0.9,
                              analysed_s=700.0, dominant="happy")
    view = views.LiveView(model="m", labels=("happy", "sad"), negative_labels=("sad",), active=True, session=session)
    words = i18n.words(lang)
    out = views.text_values(view, words)["duration"]
    assert out == (expected or words("duration.minutes_seconds", m=12, s="05"))
    assert views.text_values(view)["duration"] == "12 min 05 s"            # without words: English, as before


@pytest.mark.parametrize("lang, expected", [("en-US", "1.5"), ("de-DE", "1,5"), ("fr-FR", "1,5"), ("ru-RU", "1,5"),
                                            ("ja-JP", "1.5"), ("zh-CN", "1.5")])
def test_numbers_have_the_languages_decimal_sign(lang, expected):
    w = i18n.Words(lang)
    assert w.number(1.5, ".1f") == expected and w.number(20.0) == "20" and w.number(7.5) == expected.replace("1", "7")



def test_a_broken_model_is_said_in_the_panels_language(tmp_path):
    """The panel's "no model loaded: …" says why in its language too: a card that is not JSON, a corrupt .onnx file
    (the paths as they are, the onnxruntime detail as it comes); the English message stays for logs and programs."""
    import shutil

    from obs_mindflow.engine.card import ModelCard, ModelCardError
    from obs_mindflow.engine.model import ExpressionModel, ModelLoadError

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "card.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelCardError) as e:
        ModelCard.load(bad)
    assert str(e.value).startswith(f"model card {bad / 'card.json'} is not valid JSON: ")
    assert e.value.say(i18n.Words("de-DE")).startswith(f"die Modellkarte {bad / 'card.json'} ist kein gültiges JSON: ")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(ROOT / "models" / "mindflow-ferplus-r3d", corrupt)
    card = ModelCard.load(corrupt)
    card.model_path.write_bytes(b"not an onnx model" * 64)
    with pytest.raises(ModelLoadError) as e:
        ExpressionModel(card)
    assert str(e.value).startswith(f"cannot load ONNX model {card.model_path}: ")
    said = e.value.say(i18n.Words("ja-JP"))
    assert said.startswith(f"ONNX モデル {card.model_path} を読み込めません: ") and "壊れている" in said, said
