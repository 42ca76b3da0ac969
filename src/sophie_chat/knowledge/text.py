"""Text normalisation for the knowledge base: accents, case, stop words and light stemming.

Both the stored ``search_text`` and the user's question go through :func:`terms`, so what
matters is that they are treated alike: "Diaristas", "diarista" and "DIARISTA" give one term;
"cancelar" and "cancelamento" too. Stemming is Snowball's (the same algorithms PostgreSQL's
``portuguese_stem``/``english_stem`` use), applied after accents are removed, because users
often type without them ("servico", "contratacao").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import snowballstemmer

_WORD_RE = re.compile(r"[a-z0-9]+")

# Unaccented Portuguese endings that Snowball only recognises with their accents: put them back
# before stemming, so "contratacao" and "contratação" meet.
_REACCENT = (("coes", "ções"), ("cao", "ção"), ("oes", "ões"), ("encia", "ência"))

_PT_STOP = """
        a o as os um uma uns umas de do da dos das no na nos nas em por pelo pela pelos pelas
        para pra pro com sem sob sobre entre ate e ou mas que se como quando onde porque por que
        qual quais quem quanto quantos quanta quantas eu tu ele ela nos vos eles elas voce voces
        me te lhe lhes meu minha meus minhas seu sua seus suas teu tua nosso nossa isso isto
        aquilo esse essa esses essas este esta estes estas aquele aquela ao aos num numa
        ja nao sim mais menos muito muita muitos muitas tambem so ainda ser sou e era foi sao
        estar estou esta estao tem ter tenho ha havia vai vou ir fazer faco faz pode posso
        preciso quero gostaria consigo ola oi bom boa dia tarde noite obrigado obrigada favor
        algum alguma alguns algumas todo toda todos todas cada outro outra the
"""
_EN_STOP = """
        a an the of to in on at by for with without from into about and or but if then so
        as is are was were be been being am do does did done have has had i me my mine you
        your yours he she it its we our they them their this that these those there here
        what which who whom whose when where why how can could would should will shall may
        might must not no yes just also too very please hi hello thanks thank any some all
        each other more most less get got want need like would im dont cant
"""
STOP_WORDS: dict[str, frozenset[str]] = {
    "pt": frozenset(_PT_STOP.split()),
    "en": frozenset(_EN_STOP.split()),
}
_ALL_STOP = STOP_WORDS["pt"] | STOP_WORDS["en"]


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize(text: str) -> str:
    """Lower case, no accents, collapsed whitespace."""
    return " ".join(strip_accents(text or "").lower().split())


def primary_language(language: str | None) -> str:
    """``"pt-br"``, ``"pt_BR"`` and ``"pt"`` all give ``"pt"``; unknown gives ``"pt"``."""
    code = (language or "").lower().replace("_", "-").split("-")[0]
    return code if code in STOP_WORDS else "pt"


@lru_cache(maxsize=4)
def _stemmer(lang: str) -> Any:
    return snowballstemmer.stemmer("portuguese" if lang == "pt" else "english")


@lru_cache(maxsize=50_000)
def stem(word: str, lang: str) -> str:
    """The stem of one normalised word (lower case, unaccented)."""
    if len(word) <= 3 or word.isdigit():
        return word
    if lang == "pt":
        for plain, accented in _REACCENT:
            if word.endswith(plain):
                word = word[: -len(plain)] + accented
                break
    return strip_accents(_stemmer(lang).stemWord(word))


def words(text: str) -> list[str]:
    """Normalised words of a text, stop words included."""
    return _WORD_RE.findall(normalize(text))


def terms(text: str, language: str | None = "pt") -> list[str]:
    """Search terms of a text: normalised, stop words removed, stemmed, in order."""
    lang = primary_language(language)
    # Both languages' stop words go: pt-BR users mix in English words and vice versa.
    return [stem(w, lang) for w in words(text) if w not in _ALL_STOP and len(w) > 1]


def query_words(text: str) -> list[str]:
    """Normalised, de-duplicated words of a question without stop words (for SQL queries)."""
    seen: dict[str, None] = {}
    for w in words(text):
        if w not in _ALL_STOP and len(w) > 1:
            seen.setdefault(w, None)
    return list(seen)


def build_search_text(title: str, keywords: str, content: str, language: str | None) -> str:
    """The stored ``search_text``: three lines of stemmed terms (title, keywords, content).

    The line structure lets the portable search weigh a title match above a content match
    without stemming anything again.
    """
    return "\n".join(
        " ".join(terms(part, language)) for part in (title, keywords.replace(",", " "), content)
    )


def parse_search_text(search_text: str) -> tuple[list[str], list[str], list[str]]:
    """The three term lists of a stored ``search_text`` (missing lines are empty)."""
    lines = (search_text or "").split("\n")
    lines += [""] * (3 - len(lines))
    return lines[0].split(), lines[1].split(), lines[2].split()
