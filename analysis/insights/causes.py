"""Why a defect happened: claim and return reasons mapped to causes, and a transparent keyword
classifier of buyer comments (English, German, French) that says which words decided it."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from analysis import safety

CAUSES = (
    "not_received",
    "wrong_item",
    "damaged",
    "late",
    "not_as_described",
    "product_quality",
    "customer_service",
    "other",
)
CAUSE_LABELS = {
    "not_received": "Not received",
    "wrong_item": "Wrong item",
    "damaged": "Damaged",
    "late": "Late delivery",
    "not_as_described": "Not as described",
    "product_quality": "Product quality",
    "customer_service": "Customer service",
    "other": "Other",
}
DELIVERY_CAUSES = {"late", "not_received", "damaged"}
PRODUCT_CAUSES = {"not_as_described", "product_quality", "wrong_item"}

# Phrases per cause, in priority order (the first cause with a match wins); matched on word
# boundaries, case- and accent-insensitively.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "not_received": (
        "never arrived", "never received", "not received", "didn't receive", "did not receive", "never showed up",
        "never came", "never got", "lost in", "package was lost", "still waiting", "never delivered", "not delivered",
        "nie angekommen", "nicht angekommen", "nicht erhalten", "nie erhalten", "nicht geliefert", "verloren",
        "jamais recu", "pas recu", "jamais arrive", "non recu", "jamais livre", "pas ete livre", "perdu",
    ),
    "wrong_item": (
        "wrong item", "wrong product", "wrong colour", "wrong color", "wrong size", "different product",
        "not what i ordered", "sent the wrong", "got white", "got black",
        "falscher artikel", "falsche artikel", "falsches produkt", "falsche farbe", "falsche grosse", "nicht bestellt",
        "mauvais article", "mauvais produit", "pas le bon", "mauvaise taille", "mauvaise couleur",
    ),
    "damaged": (
        "damaged", "broken", "crushed", "cracked", "dented", "smashed", "came broke", "arrived broke",
        "beschadigt", "kaputt", "zerbrochen", "eingedruckt", "zerkratzt",
        "endommage", "casse", "abime", "ecrase", "brise", "fissure",
    ),
    "late": (
        "late", "delayed", "delay", "took forever", "took too long", "longer than promised", "slow delivery",
        "slow shipping", "weeks to arrive", "took a while",
        "verspatet", "zu spat", "verzogert", "lange gedauert", "lieferzeit",
        "en retard", "retard", "trop long", "livraison lente", "delai",
    ),
    "not_as_described": (
        "not as described", "doesn't match", "does not match", "not as pictured", "misleading", "fake",
        "counterfeit", "listing says", "description",
        "nicht wie beschrieben", "entspricht nicht", "beschreibung", "falschung",
        "pas conforme", "non conforme", "ne correspond pas", "contrefacon",
    ),
    "product_quality": (
        "poor quality", "bad quality", "cheap", "stopped working", "doesn't work", "does not work", "broke after",
        "flimsy", "defective", "quality", "faulty",
        "schlechte qualitat", "funktioniert nicht", "billig", "qualitat", "defekt",
        "mauvaise qualite", "ne fonctionne pas", "ne marche pas", "qualite", "defectueux",
    ),
    "customer_service": (
        "seller never", "no response", "never responded", "never answered", "never replied", "no reply",
        "didn't reply", "rude", "customer service", "refused", "unhelpful", "ignored", "answered my messages",
        "keine antwort", "unfreundlich", "kundenservice", "reagiert nicht", "antwortet nicht",
        "aucune reponse", "pas de reponse", "service client", "impoli", "ne repond pas",
    ),
}  # fmt: skip

CLAIM_REASON_CAUSE = {
    "not-received": "not_received",
    "not-as-described": "not_as_described",
    "damaged": "damaged",
    "wrong-item": "wrong_item",
    "refund-not-issued": "customer_service",
}
RETURN_REASON_CAUSE = {
    "DAMAGED_BY_CARRIER": "damaged",
    "CARRIER_DAMAGED": "damaged",
    "DAMAGED_BY_FC": "damaged",
    "NOT_AS_DESCRIBED": "not_as_described",
    "DEFECTIVE": "product_quality",
    "QUALITY_UNACCEPTABLE": "product_quality",
    "SWITCHEROO": "wrong_item",
    "WRONG_ITEM": "wrong_item",
    "NEVER_ARRIVED": "not_received",
    "MISSED_ESTIMATED_DELIVERY": "late",
}


def fold(text: str) -> str:
    """Lower case without accents (ü -> u, é -> e), so 'beschädigt' and 'beschadigt' match."""
    if text.isascii():  # nothing to decompose: most comments, at a fraction of the cost
        return text.lower()
    norm = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in norm if not unicodedata.combining(c)).replace("’", "'").replace("ß", "ss")


def _pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    alts = sorted((re.escape(fold(p)) for p in phrases), key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(alts) + r")(?!\w)")


_PATTERNS = {cause: _pattern(words) for cause, words in KEYWORDS.items()}


@dataclass(frozen=True)
class Classification:
    cause: str
    words: tuple[str, ...]  # the phrases that decided it
    all_causes: tuple[str, ...]  # every cause with a match, in priority order


def analyse(comment: str | None) -> tuple[Classification, list[str]]:
    """`classify` and `classify_words` of a comment, from one pass of the patterns."""
    text = fold((comment or "")[: safety.LOOK_CHARS])
    hits: dict[str, list[str]] = {}
    words: list[str] = []
    for cause, pat in _PATTERNS.items():
        found = pat.findall(text)
        if found:
            hits[cause] = list(dict.fromkeys(found))
            words += [w for w in hits[cause] if w not in words]  # each word once
    if not hits:
        return Classification("other", (), ()), words
    first = next(iter(hits))
    return Classification(first, tuple(hits[first]), tuple(hits)), words


def classify(comment: str | None) -> Classification:
    """Cause of a buyer comment: the first cause (in `KEYWORDS` order) whose phrases occur."""
    return analyse(comment)[0]


def classify_words(comment: str | None) -> list[str]:
    """Every phrase of any cause found in a comment (for showing why a verdict was reached)."""
    return analyse(comment)[1]


def claim_cause(reason: str | None) -> str:
    if not reason:
        return "other"
    return CLAIM_REASON_CAUSE.get(reason, classify(reason.replace("-", " ")).cause)


def return_cause(reason: str | None) -> str:
    if not reason:
        return "other"
    return RETURN_REASON_CAUSE.get(reason.strip().upper(), "other")
