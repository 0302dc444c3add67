"""Provider tokens recognised by their prefix and shape, and the cheap first look that finds them.

The facts (prefixes, alphabets, lengths) are those GitHub secret scanning, gitleaks and trufflehog use;
the patterns are ours. How ``re`` makes this cheap: a pattern that starts with a literal, or with a
branch whose alternatives all start with one, is searched by a scan in C for those characters; any other
start (a look-behind, a character class in a branch) costs a call of the matcher at every position.
"""

from __future__ import annotations

import re
from typing import Final

_A: Final = re.ASCII

#: Provider tokens by prefix and shape (facts from GitHub secret scanning, gitleaks and trufflehog rules;
#: the patterns are ours). Each starts with a literal character, at a word start; bodies are open-ended so
#: that a longer token is censored whole.
_TOKENS: Final = (
    r"sk_(?:live|test|prod)_[A-Za-z0-9]{8,}",  # Stripe secret keys
    r"rk_(?:live|test|prod)_[A-Za-z0-9]{8,}",  # Stripe restricted keys
    r"whsec_[A-Za-z0-9+/=]{16,}",  # Stripe webhook signing secrets
    r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}(?![A-Za-z0-9])",  # AWS access key ids
    r"gh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{20,}",  # GitHub fine-grained tokens
    r"gl(?:pat|ptt|dt|rt|ft|cbt|imt|oas|soat|ffct|agent)-[A-Za-z0-9_-]{20,}",  # GitLab
    r"GR1348941[A-Za-z0-9_-]{20,}",  # GitLab runner registration tokens
    r"xox[abposre]-[A-Za-z0-9-]{8,}",  # Slack bot, user and configuration tokens
    r"xapp-[0-9]-[A-Za-z0-9-]{10,}",  # Slack app-level tokens
    r"AIza[A-Za-z0-9_-]{35,}",  # Google API keys
    r"GOCSPX-[A-Za-z0-9_-]{24,}",  # Google OAuth client secrets
    r"ya29\.[A-Za-z0-9_-]{20,}",  # Google OAuth access tokens
    r"SK[0-9a-fA-F]{32}(?![A-Za-z0-9])",  # Twilio API key secrets
    r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",  # SendGrid
    r"key-[0-9a-f]{32}(?![A-Za-z0-9])",  # Mailgun private keys
    r"pubkey-[0-9a-f]{32}(?![A-Za-z0-9])",  # Mailgun public validation keys
    r"x(?:keysib|smtpsib)-[0-9a-f]{64}-[A-Za-z0-9]{16}",  # Brevo (Sendinblue)
    r"npm_[A-Za-z0-9]{36,}",  # npm
    r"pypi-AgE[A-Za-z0-9_-]{40,}",  # PyPI upload tokens
    r"rubygems_[0-9a-f]{48}",  # RubyGems
    r"dckr_pat_[A-Za-z0-9_-]{20,}",  # Docker Hub
    r"pul-[0-9a-f]{40}",  # Pulumi
    # OpenAI (sk-, sk-proj-, sk-svcacct-, sk-admin-), Anthropic (sk-ant-api03-...) and other sk- keys: a
    # digit and an upper-case letter, or 32+ hex, so that a slug such as sk-learn-... is not one.
    r"sk-(?:ant-[a-z]+[0-9]{2}-|proj-|svcacct-|admin-)?"
    r"(?=[A-Za-z0-9_-]*[0-9])(?:(?=[A-Za-z0-9_-]*[A-Z])[A-Za-z0-9_-]{20,}|[0-9a-f]{32,})",
    r"sq0(?:atp|csp)-[A-Za-z0-9_-]{22,}",  # Square
    r"EAA[ACM][A-Za-z0-9_-]{60,}",  # Square and Meta access tokens
    r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}",  # PayPal Braintree
    r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",  # Shopify
    r"access-(?:sandbox|development|production)-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}",  # Plaid
    r"FLWSECK(?:_TEST)?-[a-h0-9]{32}-X",  # Flutterwave
    r"do[opr]_v1_[a-f0-9]{64}",  # DigitalOcean
    r"HRKU-AA[A-Za-z0-9_-]{58}",  # Heroku
    r"hv[sb]\.[A-Za-z0-9_-]{90,}",  # HashiCorp Vault
    r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}",  # Doppler
    r"dapi[a-f0-9]{32}(?:-[0-9])?",  # Databricks
    r"pscale_(?:pw|tkn|oauth)_[A-Za-z0-9_=.-]{32,}",  # PlanetScale
    r"sbp_[a-f0-9]{40}",  # Supabase
    r"fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3}",  # Fly.io macaroons
    r"fo1_[A-Za-z0-9_-]{43}",  # Fly.io OAuth tokens
    r"sntry[su]_[A-Za-z0-9+/=_]{40,}",  # Sentry auth tokens
    r"glc_[A-Za-z0-9+/]{32,}={0,3}",  # Grafana Cloud
    r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}",  # Grafana service accounts
    r"NRAK-[A-Z0-9]{27}",  # New Relic user keys
    r"NRJS-[a-f0-9]{19}",  # New Relic browser keys
    r"hf_[A-Za-z]{34,}",  # Hugging Face
    r"ATATT3[A-Za-z0-9_=-]{100,}",  # Atlassian
    r"lin_api_[A-Za-z0-9]{40}",  # Linear
    r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}",  # Postman
    r"AGE-SECRET-KEY-1[0-9A-Z]{58}",  # age
    r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}",  # Cloudflare origin CA keys
    r"bot[0-9]{8,10}:A[A-Za-z0-9_-]{34}",  # Telegram bot tokens in an API URL
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",  # JWTs
)
#: Tokens that start with no fixed character, each looked for only when its literal is in the text
#: (``may_hold_class_token`` tests the three at once).
_CLASS_TOKENS: Final = (
    ("-us", r"[0-9a-f]{32}-us[0-9]{1,2}(?![A-Za-z0-9])"),  # Mailchimp
    (":A", r"[0-9]{8,10}:A[A-Za-z0-9_-]{34}"),  # Telegram bot tokens
    ("Q~", r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}"),  # Azure AD client secrets
)
_AWS_ID_PREFIXES: Final = frozenset(
    {"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"}
)
#: The shortest token (``xoxb-`` and 8).
TOKEN_MIN: Final = 13


def _by_first_character(patterns: tuple[str, ...]) -> str:
    """``a(?:rest|rest)|b(?:rest)``: ``re`` rejects an alternative that starts with a literal on its first
    character without a call, so fifty tokens cost about what a few would."""
    groups: dict[str, list[str]] = {}
    for pattern in patterns:
        groups.setdefault(pattern[0], []).append(pattern[1:])
    return "|".join(f"{re.escape(first)}(?:{'|'.join(rests)})" for first, rests in groups.items())


_TOKEN_BODY = _by_first_character(_TOKENS)
_TOKEN = re.compile(rf"(?<![A-Za-z0-9_])(?:{_TOKEN_BODY})", _A)
#: The first look for tokens, on the words (split at whitespace) of ``TOKEN_MIN`` characters or more,
#: each after a space: it starts with the character before a token, so ``re`` tries it only after spaces
#: and punctuation (a scan in C finds them), not at every letter.
_TOKEN_SEEN = re.compile(rf"[^A-Za-z0-9_](?:{_TOKEN_BODY})", _A)
CLASS_TOKEN = tuple(
    (literal, re.compile(rf"(?<![A-Za-z0-9_])(?:{pattern})", _A)) for literal, pattern in _CLASS_TOKENS
)

#: An AWS secret access key: 40 base64 characters, both cases; censored next to an access key id.
_AWS_SECRET = re.compile(
    r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
    _A,
)


def may_hold_token(text: str) -> bool:
    """Whether a word of ``text`` long enough for a token holds one's start (tokens have no whitespace)."""
    words = text.split()
    if len(words) == 1:  # an id, a path, a URL: the common case, without building a list
        return len(words[0]) >= TOKEN_MIN and _TOKEN_SEEN.search(" " + words[0]) is not None
    words = [word for word in words if len(word) >= TOKEN_MIN]
    return bool(words) and _TOKEN_SEEN.search(" " + " ".join(words)) is not None


def may_hold_class_token(text: str) -> bool:
    """Whether ``text`` holds the literal of a token that starts with no fixed character."""
    return "-us" in text or ":A" in text or "Q~" in text


def replace_tokens(text: str, censor: str) -> str:
    """``text`` with every token censored, and an AWS secret key too when an access key id was found."""
    found_aws_id = False

    def replace(match: re.Match[str]) -> str:
        nonlocal found_aws_id
        found_aws_id = found_aws_id or match.group(0)[:4] in _AWS_ID_PREFIXES
        return censor

    text = _TOKEN.sub(replace, text)
    return _AWS_SECRET.sub(censor, text) if found_aws_id else text
