"""The words of a search that carry meaning: stop words dropped from full-text queries.

A query is an OR of its words, so "where does my sister live" would otherwise match every
memory holding "my" or "does": slower (BM25 scores every match) and, for automatic recall, a
note on every turn. English only, like the porter stemmer the ``sqlite`` backend indexes with
(PostgreSQL's ``english`` configuration drops its own); a query of stop words alone keeps them.
"""

from __future__ import annotations

__all__ = ["STOP_WORDS", "query_terms"]

STOP_WORDS: frozenset[str] = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    let me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves i'm i've i'd i'll it's
    that's what's where's who's don't doesn't didn't can't won't isn't aren't wasn't tell know
    remember please""".split()
)
"""Common English words that say nothing about which memory is meant (``tell``, ``know``,
``remember`` and ``please`` too: "do you remember…", "please tell me…")."""


def query_terms(query: str) -> list[str]:
    """The words of ``query`` worth searching for, in order: those with a letter or digit,
    stop words left out unless nothing else remains."""
    words = [word for word in query.split() if any(ch.isalnum() for ch in word)]
    meaningful = [word for word in words if word.strip(".,;:!?¿¡\"'()[]{}").lower() not in STOP_WORDS]
    return meaningful or words
