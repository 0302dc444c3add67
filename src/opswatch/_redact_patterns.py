"""The shapes of secrets and PII in text, and the cheap first looks that spare ordinary text from them.

``Shapes(...).scrub(text)`` returns ``text`` with every recognised secret replaced by the censor and every
email address masked. The rules come in groups; each group has a *gate*, a test a string must pass for
any pattern of the group to match it (a substring, a character run, a length), and the patterns of a
group run only when its gate passes. The gates are cheap (``in`` tests, one short regular expression),
so a string without anything secret-like pays a fraction of a microsecond. Every gate is *implied* by the
patterns it guards: skipping a group whose gate fails changes nothing (``tests/test_server_redaction.py``
checks this on generated text).

The groups, in the order they run:

* **blocks**: PEM/PGP private keys; webhook URLs of Slack, Discord, Microsoft Teams and Zapier;
  ``scheme://user:password@`` credentials (the user is kept);
* **headers and pairs**: ``Cookie:``/``Set-Cookie:``/``Authorization:`` written as text (the rest of the
  line), ``Bearer``/``Basic``/``Token`` credentials, and ``key=value`` / ``"key": "value"`` /
  ``key: value`` pairs (logfmt, query strings, form bodies, JSON or a dict's repr in a message, env dumps,
  ini files) whose key the field rules call secret (``opswatch._redact_keys``);
* **tokens** (``opswatch._redact_tokens``): provider tokens recognised by their prefix and shape (GitHub,
  GitLab, Slack, Stripe, AWS, Google, OpenAI, Anthropic, SendGrid, Twilio, npm, PyPI ...), JWTs, and an
  AWS secret access key (40 characters) in a string that also holds an AWS access key id;
* **numbers** (checks in ``opswatch._redact_numbers``): US SSNs (``-``, space or ``.`` separated), payment
  card numbers (issuer prefix, a length valid for that issuer, Luhn), IBANs (country length and mod-97
  check), and, when asked for, phone numbers and IP addresses;
* **emails**: ``j***@example.com``, ``j***%40example.com`` when URL-encoded; a domain must end in a TLD
  that is not a file extension (``logo@2x.png`` stays) and an ssh/URL user (``git@github.com:org/x``)
  is not a person.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Final

from . import _limits
from ._redact_keys import SECRET, is_weak_key, judge_words, key_words
from ._redact_numbers import IBAN_LENGTHS, iban_valid, is_card_number
from ._redact_tokens import CLASS_TOKEN, TOKEN_MIN, may_hold_class_token, may_hold_token, replace_tokens

_A: Final = re.ASCII

# -- blocks ------------------------------------------------------------------------------------------

_PEM = re.compile(
    r"-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END[A-Z ]*PRIVATE KEY(?: BLOCK)?-----|.*)",
    re.DOTALL | _A,
)
_WEBHOOK = re.compile(
    r"https?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"
    r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+"
    r"|[A-Za-z0-9-]+\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/_-]+"
    r"|hooks\.zapier\.com/hooks/catch/[0-9]+/[A-Za-z0-9]+)",
    _A,
)
_URL_CREDENTIALS = re.compile(r"(://)([^\s/:@]*):([^\s/@]+)@", _A)  # found by its literal, fast

# -- headers and pairs -------------------------------------------------------------------------------

_BEARER = re.compile(r"\b((?i:bearer|basic|token))\s+[A-Za-z0-9\-._~+/]{8,}=*", _A)
_BEARER_MIN: Final = 14  # "Basic" (or "Token"), a space and 8 characters
#: A header whose value is the rest of the line (or of the quoted string it stands in).
_HEADER = re.compile(
    r"(?<![\w-])((?i:set-cookie|cookie|proxy-authorization|authorization))([\"']?[ \t]*:[ \t]*)"
    r"(\"[^\"\r\n]*\"|'[^'\r\n]*'|[^\"'\r\n]+)",
    _A,
)  # (``cookie=...`` in a query string or form body is a pair like any other)
_KEY_CHARS = r"[A-Za-z_][\w.\-\[\]]{0,63}"
# ``key=value``; ``"key": value`` (the colon right after the quote); ``key: value`` (a space after it).
_PAIR = re.compile(
    rf"(?<![\w.\[\]])(?:(\\?[\"'])({_KEY_CHARS})\1(?=[ \t]*=|:)|({_KEY_CHARS})(?=[ \t]*=|:[ \t]))"
    r"([ \t]*[=:][ \t]*)"
    r"(\"(?:[^\"\\\r\n]|\\.)*\"|'(?:[^'\\\r\n]|\\.)*'"  # a quoted value
    r"|\\\"[^\"\\\r\n]*\\\"|\\'[^'\\\r\n]*\\'"  # a value quoted in JSON written into a JSON string
    r"|[^\s&;,\"'<>]+)",  # a bare value
    _A,
)
#: Unquoted values that are not secrets whatever the key (the field rules keep None and booleans too).
_UNQUOTED_KEEP: Final = frozenset({"null", "true", "false", "none", "nil", "undefined"})
#: A pair's key: not secret, secret, or secret but also a prose word (``token``, ``session``, ``auth``).
_KEEP, _CUT, _WEAK = 0, 1, 2



#: A pair is judged at its separator by the key before it (found with ``str`` methods), and ``_PAIR`` is
#: tried only where that key is secret: cheaper than trying ``_PAIR`` at every position of the text.
_KEY_CHARACTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-[]"
_SPACES: Final = (" ", "\t")
_QUOTES: Final = ("'", '"')
_KEY_JUNK: Final = "0123456789.-[]"


def _separators(text: str) -> list[int]:
    """Where ``=`` stands, and ``:`` after a quote or before a space (not 10:32:00, https:, church:4)."""
    found: list[int] = []
    at = text.find("=")
    while at >= 0:
        found.append(at)
        at = text.find("=", at + 1)
    at = text.find(":")
    while at >= 0:
        if text[at + 1 : at + 2] in _SPACES or text[at - 1 : at] in _QUOTES:
            found.append(at)
        at = text.find(":", at + 1)
    found.sort()
    return found


def _may_hold_pair(text: str) -> bool:
    """What every ``_PAIR`` match contains: ``=``, or a colon after a quote or before a space."""
    return "=" in text or ": " in text or '":' in text or "':" in text or ":\t" in text


# -- numbers -----------------------------------------------------------------------------------------

#: What SSNs and card numbers need (11 digit-or-separator characters; cards have 13 digits or more), or
#: an IBAN (its country and check digits). It starts with one character class, so ``re`` scans in C for
#: digits; the number patterns below start with a class too, with their look-behind after it.
_NUMBERS_GATE = re.compile(r"[0-9](?:[0-9 .-]{9,}[0-9]|(?<=[A-Z][A-Z][0-9])[0-9])", _A)
_NUMBERS_MIN: Final = 11
# The number patterns start with a digit or letter (not a look-behind), so that ``re`` skips ahead to
# candidates in C instead of trying every position; the look-behind after it checks what precedes.
_SSN = re.compile(
    r"[0-9]{3}(?<![\w.-][0-9]{3})(?<!000)(?<!666)(?<!9[0-9][0-9])([- .])(?!00)[0-9]{2}\1(?!0000)[0-9]{4}"
    r"(?![\w-]|\.[0-9])",
    _A,
)
# Not glued to letters or digits: a digit run inside a hex id or a token is not a card number.
_CARD = re.compile(r"[0-9](?<![\w-][0-9])(?:[ -]?[0-9]){12,}(?!\w)", _A)
_CARD_GROUP = re.compile(r"[0-9]+", _A)
#: Under a card key: any 12-19 digit number, issuer or not.
_CARD_FIELD = re.compile(r"[0-9](?<![\w-][0-9])(?:[ -]?[0-9]){11,18}(?!\w)", _A)
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]){11,30}(?![a-z0-9])", _A)
_PHONE = re.compile(
    r"(?<![\w+.-])(?:\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){2,6}"  # international: +44 20 7946 0958
    r"|(?:1[ .-])?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4})"  # (415) 555-2671
    r"(?![\w-]|\.[0-9])",
    _A,
)
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    r"(?![\w]|\.[0-9])",
    _A,
)
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?![\w:])", _A)

# -- emails ------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@|%40)"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}))(?![A-Za-z0-9-])",
    _A,
)
#: Endings of file names, not of domains (``logo@2x.png``). TLDs that are also extensions but carry mail
#: (``.py`` Paraguay, ``.pl`` Poland, ``.md``, ``.rs``, ``.sh``, ``.ai`` ...) are not listed.
FILE_EXTENSIONS: Final = frozenset(
    {
        "png", "jpg", "jpeg", "gif", "webp", "svg", "ico", "bmp", "tif", "tiff", "avif", "heic", "heif",
        "apng", "jfif", "css", "js", "mjs", "cjs", "jsx", "ts", "tsx", "map", "json", "jsonl", "html",
        "htm", "xhtml", "xml", "txt", "csv", "tsv", "pdf", "woff", "ttf", "otf", "eot", "wav",
        "ogg", "webm", "avi", "mkv", "flac", "gz", "tgz", "xz", "rar", "tar", "pyc", "whl", "egg",
        "rb", "php", "java", "class", "jar", "yml", "yaml", "toml", "ini", "cfg", "conf", "lock", "log",
        "sql", "db", "sqlite", "exe", "dll", "dylib", "wasm", "vue", "svelte", "scss", "sass", "less",
    }
)

# -- the rules ---------------------------------------------------------------------------------------

Sub = Callable[["re.Match[str]"], str]


class Shapes:
    """Every value rule for one set of options; ``scrub`` applies them, ``may_match`` is their gates."""

    def __init__(
        self,
        *,
        censor: str = "[REDACTED]",
        mask_emails: bool = True,
        extra_words: frozenset[str] = frozenset(),
        phones: bool = False,
        ips: bool = False,
    ) -> None:
        self.censor = censor
        self.mask_emails = mask_emails
        self.extra_words = extra_words
        self.phones = phones
        self.ips = ips
        self._pair_keys: dict[str, int] = {}

    def may_match(self, text: str) -> bool:
        """False only when no rule can change ``text`` (the gates ``scrub`` uses, each implied by the
        patterns it guards)."""
        if "@" in text or "%40" in text or "://" in text or "PRIVATE KEY" in text or self.phones or self.ips:
            return True
        size = len(text)
        if ":" in text or size >= _BEARER_MIN:
            lowered = text.lower()
            if size >= _BEARER_MIN and ("bearer" in lowered or "basic" in lowered or "token" in lowered):
                return True
            if ":" in text and ("cookie" in lowered or "authorization" in lowered):
                return True
        if _may_hold_pair(text) and self._pairs(text) != text:
            return True
        if size >= TOKEN_MIN and (may_hold_token(text) or may_hold_class_token(text)):
            return True
        return size >= _NUMBERS_MIN and _NUMBERS_GATE.search(text) is not None

    def scrub(self, text: str) -> str:
        """``text`` with every rule applied (cheap when no gate passes)."""
        censor = self.censor
        if "PRIVATE KEY" in text:
            text = _PEM.sub(censor, text)
        if "://" in text:
            text = _WEBHOOK.sub(censor, text)
            text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{censor}@", text)
        size = len(text)
        if ":" in text or size >= _BEARER_MIN:
            lowered = text.lower()
            if size >= _BEARER_MIN and ("bearer" in lowered or "basic" in lowered or "token" in lowered):
                text = _BEARER.sub(lambda m: f"{m.group(1)} {censor}", text)
            if ":" in text and ("cookie" in lowered or "authorization" in lowered):
                text = _HEADER.sub(self._header, text)
        if _may_hold_pair(text):
            text = self._pairs(text)
        if size >= TOKEN_MIN:
            if may_hold_token(text):
                text = replace_tokens(text, censor)
            if may_hold_class_token(text):
                for literal, pattern in CLASS_TOKEN:
                    if literal in text:
                        text = pattern.sub(censor, text)
        if size >= _NUMBERS_MIN and _NUMBERS_GATE.search(text) is not None:
            text = _SSN.sub(censor, text)
            text = _CARD.sub(self._card, text)
            text = _IBAN.sub(self._iban, text)
        if self.phones:
            text = _PHONE.sub(self._phone, text)
        if self.ips:
            if "." in text:
                text = _IPV4.sub(censor, text)
            if ":" in text:
                text = _IPV6.sub(self._ipv6, text)
        if self.mask_emails and ("@" in text or "%40" in text):
            text = _EMAIL.sub(_mask_email, text)
        return text

    def _pairs(self, text: str) -> str:
        """Every pair whose key is secret, its value censored; keys are looked at separator by separator."""
        pieces: list[str] = []
        done = 0  # text before this is in ``pieces`` (or inside a censored value)
        for at in _separators(text):
            if at < done:
                continue
            before = text[max(0, at - 70) : at].rstrip(" \t")
            if before[-1:] in _QUOTES:
                before = before[:-1].removesuffix("\\")
            key = before[len(before.rstrip(_KEY_CHARACTERS)) :].lstrip(_KEY_JUNK)
            if not key or len(key) > 64 or self._pair_verdict(key) == _KEEP:
                continue
            start = text.rfind(key, 0, at)
            if text[start - 1 : start] in _QUOTES:
                start -= 2 if text[start - 2 : start - 1] == "\\" else 1
            match = _PAIR.match(text, start)
            if match is None or match.end() <= at:
                continue
            replacement = self._pair(match)
            if replacement != match.group(0):
                pieces.append(text[done : match.start()])
                pieces.append(replacement)
                done = match.end()
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    def _pair_verdict(self, key: str) -> int:
        verdict = self._pair_keys.get(key)
        if verdict is None:
            words = key_words(key)
            if judge_words(words, self.extra_words) != SECRET:
                verdict = _KEEP
            else:
                verdict = _WEAK if is_weak_key(words) else _CUT
            if len(self._pair_keys) >= _limits.REDACTION_CACHE_SIZE:
                self._pair_keys.clear()
            self._pair_keys[key] = verdict
        return verdict

    def scrub_card_field(self, text: str) -> str:
        """``text`` (already scrubbed) under a card key: every 12-19 digit number censored."""
        return _CARD_FIELD.sub(self.censor, text)

    # -- replacements -----------------------------------------------------------------------------

    def _header(self, match: re.Match[str]) -> str:
        value = match.group(3)
        if value[:1] in ("'", '"'):
            return f"{match.group(1)}{match.group(2)}{value[0]}{self.censor}{value[0]}"
        return f"{match.group(1)}{match.group(2)}{self.censor}"

    def _pair(self, match: re.Match[str]) -> str:
        quote, quoted_key, bare_key, separator, value = match.groups()
        verdict = self._pair_verdict(quoted_key if quoted_key is not None else bare_key)
        if verdict == _KEEP:
            return match.group(0)
        if verdict == _WEAK and bare_key is not None and ":" in separator and not _at_line_start(match):
            return match.group(0)  # "Invalid token: expired" is prose; "token: abc" on its own line is not
        rest = ""
        if value[:1] in ("'", '"') or value.startswith(("\\'", '\\"')):
            opening = value[: 2 if value[0] == "\\" else 1]
            inner = value[len(opening) : -len(opening)]
            if not inner or inner == self.censor:
                return match.group(0)
            value = f"{opening}{self.censor}{opening}"
        else:
            if quote:  # JSON or a repr: an unquoted value ends where its object or list does
                cut = min((i for i in (value.find("}"), value.find("]")) if i >= 0), default=len(value))
                value, rest = value[:cut], value[cut:]
            if not value or value.lower() in _UNQUOTED_KEEP or value.startswith(self.censor):
                return match.group(0)
            value = self.censor
        return f"{match.group(0)[: match.start(5) - match.start()]}{value}{rest}"

    def _card(self, match: re.Match[str]) -> str:
        run = match.group(0)
        if is_card_number(run.replace(" ", "").replace("-", "")):
            return self.censor
        # A card next to other numbers ("ref 1234 4242 4242 4242 4242", "4242424242424242 0"): one group
        # of 13-19 digits, or a span of groups of up to 6 digits, the first of 4, that is a card number.
        groups = [(m.start(), m.end()) for m in _CARD_GROUP.finditer(run)]
        for first, (start, end) in enumerate(groups):
            if 13 <= end - start <= 19 and is_card_number(run[start:end]):
                return run[:start] + self.censor + run[end:]  # written without separators
            if end - start != 4:
                continue
            digits = ""
            for last in range(first, len(groups)):
                group_start, group_end = groups[last]
                if group_end - group_start > 6:
                    break
                digits += run[group_start:group_end]
                if len(digits) > 19:
                    break
                if is_card_number(digits):
                    return run[:start] + self.censor + run[group_end:]
        return run

    def _iban(self, match: re.Match[str]) -> str:
        run = match.group(0)
        expected = IBAN_LENGTHS.get(run[:2])
        if expected is None:
            return run
        count = 0
        for index, char in enumerate(run):
            if char != " ":
                count += 1
                if count == expected:
                    cut = index + 1
                    if cut < len(run) and run[cut] != " ":
                        return run  # glued to more letters or digits: not an IBAN of this country
                    if iban_valid(run[:cut].replace(" ", "")):
                        return self.censor + run[cut:]
                    return run
        return run

    def _phone(self, match: re.Match[str]) -> str:
        digits = sum(char.isdigit() for char in match.group(0))
        return self.censor if 10 <= digits <= 15 else match.group(0)

    def _ipv6(self, match: re.Match[str]) -> str:
        try:
            ipaddress.IPv6Address(match.group(0))
        except ValueError:
            return match.group(0)
        return self.censor


def _at_line_start(match: re.Match[str]) -> bool:
    start = match.start()
    line_start = match.string.rfind("\n", 0, start) + 1
    return match.string[line_start:start].strip() == ""


def _mask_email(match: re.Match[str]) -> str:
    text = match.string
    start, end = match.start(), match.end()
    if match.group(4).lower() in FILE_EXTENSIONS:
        return match.group(0)  # logo@2x.png
    if text.endswith("://", 0, start):
        return match.group(0)  # ssh://git@github.com/...: a user name in a URL
    if end + 1 < len(text) and text[end] == ":" and not text[end + 1].isspace():
        return match.group(0)  # git@github.com:org/repo.git (scp-style ssh)
    return f"{match.group(1)}***{match.group(2)}{match.group(3)}"
