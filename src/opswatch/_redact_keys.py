"""Which keys name a secret: one judgment for dict keys and for ``key=value`` pairs written into text.

A key is split into words whatever its style (``accessToken``, ``x-api-key``, ``DB_PASSWORD``) and judged
by its words: some words are secret wherever they stand (``password``, ``secret``, ``authorization``,
``cookie`` ...), others only as the last word (``token``, ``session``, ``auth``), so ``csrf_token`` is a
secret and ``tokensUsed``, ``tokenizer``, ``session_count`` and ``author`` are not. A word glued from
several (``csrfmiddlewaretoken``, ``userpassword``) is judged by how it starts and ends.

Keys whose words say *card* (``card``, ``pan``, ``cc``) are not secret as a whole (``card_brand`` is
harmless) but a card-number-like value under them is censored even when its issuer is unknown.
"""

from __future__ import annotations

import re
from typing import Final

#: Words that make a key secret wherever they stand in it.
SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "secrets", "credential", "credentials",
        "authorization", "cookie", "cookies", "csrf", "xsrf", "csrftoken", "xsrftoken", "ssn", "cvv",
        "cvc", "cvv2", "apikey", "privatekey", "clientsecret", "accesstoken", "refreshtoken", "authtoken",
        "sessionid", "sessiontoken", "cardnumber", "ccnumber", "creditcard", "pin", "otp", "totp",
        "jwt", "bearer", "sig", "signature",
    }
)

#: Words that make a key secret only when they end it (``csrf_token`` yes, ``token_count`` no).
SECRET_LAST_WORDS = frozenset({"token", "session", "auth", "key"})

#: ``key`` alone (``sort_key``, ``idempotency_key``) is not a secret; it is after one of these words.
_KEY_QUALIFIERS = frozenset(
    {"api", "private", "secret", "access", "signing", "encryption", "master", "license", "client",
     "session", "auth", "ssh", "stripe", "x"}
)

#: Two-word endings that are secret (``card_number``, ``session_id``, ``set_cookie``, Azure's ``AccountKey``).
SECRET_PAIRS = frozenset(
    {("card", "number"), ("card", "num"), ("cc", "number"), ("session", "id"), ("set", "cookie"),
     ("social", "security"), ("security", "number"), ("account", "number"), ("routing", "number"),
     ("private", "key"), ("api", "key"), ("client", "secret"), ("account", "key")}
)

#: How a word glued from several starts or ends when it names a secret (``csrfmiddlewaretoken``,
#: ``passwordhash``, ``dbpassword``, ``oauthtoken``). ``secret`` and ``token`` only end one: ``secretary``.
_GLUED_STARTS: Final = (
    "password", "passwd", "passphrase", "csrf", "xsrf", "credential", "secretkey", "secretaccess", "apikey",
    "privatekey", "accesstoken", "authtoken", "refreshtoken", "sessionid", "sessiontoken", "clientsecret",
)
_GLUED_ENDS: Final = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "secretkey", "sessionid",
    "credential", "credentials", "cookie", "csrf", "xsrf",
)

#: Words that say a key holds a card number (its value is censored when it looks like one, see above).
CARD_WORDS = frozenset({"card", "cards", "pan", "cc", "cardno", "cardnum", "ccnum"})

#: Verdicts: a key is plain, secret (its value is censored), or a card key (card-like values are).
PLAIN: Final = 0
SECRET: Final = 1
CARD: Final = 2

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def key_words(key: str) -> tuple[str, ...]:
    """Split a key into lower-case words: ``stripeSecretKey`` -> ``('stripe', 'secret', 'key')``."""
    return tuple(w.lower() for w in _WORD_SPLIT.split(key) if w)


def judge_words(words: tuple[str, ...], extra: frozenset[str] = frozenset()) -> int:
    """``SECRET``, ``CARD`` or ``PLAIN`` for a key split into ``words`` (``extra``: settings' key words)."""
    if not words:
        return PLAIN
    for word in words:
        if word in SECRET_WORDS or word in extra:
            return SECRET
    last = words[-1]
    if len(words) >= 2 and (words[-2], last) in SECRET_PAIRS:
        return SECRET
    if last in SECRET_LAST_WORDS and (last != "key" or (len(words) >= 2 and words[-2] in _KEY_QUALIFIERS)):
        return SECRET
    for word in words:
        if len(word) > 5 and (word.startswith(_GLUED_STARTS) or word.endswith(_GLUED_ENDS)):
            return SECRET
    for word in words:
        if word in CARD_WORDS:
            return CARD
    return PLAIN


def is_weak_key(words: tuple[str, ...]) -> bool:
    """A one-word key that prose uses too (``token``, ``session``, ``auth``, ``key``): "Invalid token: x"."""
    return len(words) == 1 and words[0] in SECRET_LAST_WORDS
