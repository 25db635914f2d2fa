"""The yes/no words a person may type to answer a question the hub asked (an approval).

One owner for the vocabulary: the session manager routes a typed answer to the pending
question with it, and the approval that asked reads the answer with it, so a word that answers
a question is never taken for a new message, nor a new message for an answer.
"""

from __future__ import annotations

YES_WORDS = frozenset({"yes", "y", "approve", "approved", "ok", "okay", "allow", "sure"})
NO_WORDS = frozenset({"no", "n", "nope", "deny", "denied", "reject", "cancel", "stop"})
ANSWER_HINT = "Reply yes or no if you cannot tap a button."
"""The last line of a question with buttons, for where they cannot be tapped; a channel that
asks in its own way (the terminal's ``[y/N]``) leaves it out."""


def read_answer(text: str) -> bool | None:
    """What a typed reply says to a yes/no question.

    Args:
        text: the message as typed; case, surrounding spaces and a trailing "." or "!" do
            not matter ("OK.", " Nope!").

    Returns:
        True for yes, False for no, None for anything else (not an answer).
    """
    word = text.strip().strip(".!").strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


__all__ = ["ANSWER_HINT", "NO_WORDS", "YES_WORDS", "read_answer"]
