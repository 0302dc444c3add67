"""Property: generated secrets of every supported shape, anywhere in generated text, never survive; generated
look-alikes (ids, hashes, uuids, timestamps, versions, amounts, epoch ms, ISBNs, @2x file names) never change.
"""

from __future__ import annotations

import datetime
import hashlib
import string
from typing import Any

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from opswatch.redact import Redactor
from opswatch.server.redaction import ServerRedactor

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
UPPER_DIGITS = string.ascii_uppercase + string.digits


def chars(alphabet: str, size: int, most: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=size, max_size=size if most is None else most)


def mixed(size: int, most: int | None = None) -> st.SearchStrategy[str]:
    """A token body as providers issue them: letters of both cases and digits."""
    return chars(ALNUM, size, most).filter(
        lambda s: any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s)
    )


def joined(*parts: st.SearchStrategy[str] | str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.just(p) if isinstance(p, str) else p for p in parts)).map("".join)


def luhn_complete(partial: str) -> str:
    """``partial`` and the check digit that makes it pass Luhn."""
    for check in "0123456789":
        digits = partial + check
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d for i, d in enumerate(map(int, reversed(digits)))
        )
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


#: (issuer prefix, length)
ISSUERS = [("4", 16), ("4", 13), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15),
           ("6011", 16), ("65", 16), ("3528", 16), ("3589", 19), ("36", 14), ("300", 14), ("62", 16),
           ("6759", 16), ("5018", 19)]


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix, length = draw(st.sampled_from(ISSUERS))
    number = luhn_complete(prefix + draw(chars(string.digits, length - len(prefix) - 1)))
    separator = draw(st.sampled_from(["", " ", "-"]))
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4)) if separator else number


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country, bban = draw(
        st.sampled_from(
            [
                ("DE", chars(string.digits, 18)),
                ("NL", joined(chars(string.ascii_uppercase, 4), chars(string.digits, 10))),
                ("GB", joined(chars(string.ascii_uppercase, 4), chars(string.digits, 14))),
                ("BE", chars(string.digits, 12)),
                ("NO", chars(string.digits, 11)),
            ]
        )
    )
    bban_text = draw(bban)
    numeric = "".join(str(int(c, 36)) for c in bban_text + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban_text}"
    spaced = draw(st.booleans())
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if spaced else iban


@st.composite
def ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda n: n != 666))
    group, serial = draw(st.integers(1, 99)), draw(st.integers(1, 9999))
    separator = draw(st.sampled_from("- ."))
    return f"{area:03d}{separator}{group:02d}{separator}{serial:04d}"


value = chars(ALNUM + "_-", 6, 24).filter(lambda s: s.lower() not in ("null", "true", "false", "none", "nil"))
secret_key = st.sampled_from(
    ["password", "DB_PASSWORD", "api_key", "apiKey", "access_token", "client_secret", "AWS_SECRET_ACCESS_KEY",
     "SecretAccessKey", "csrfmiddlewaretoken", "sig", "pwd", "x-api-key", "refresh_token", "passphrase"]
)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[str, str]:
    key, secret = draw(secret_key), draw(value)
    form = draw(st.sampled_from(['{k}={v}', '{k}="{v}"', "{k}='{v}'", '"{k}": "{v}"', "'{k}': '{v}'", "{k} = {v}",
                                 "?a=1&{k}={v}&b=2", "export {k}={v}", '\\"{k}\\": \\"{v}\\"']))
    return form.format(k=key, v=secret), secret


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    local = draw(chars(string.ascii_lowercase + string.digits + "._+", 2, 12).filter(lambda s: s[0].isalnum()))
    domain = draw(chars(string.ascii_lowercase, 2, 10))
    tld = draw(st.sampled_from(["com", "org", "co.uk", "church", "de", "io"]))
    at = draw(st.sampled_from(["@", "%40"]))
    return f"{local}{at}{domain}.{tld}", f"{local}{at}"


def token(*parts: st.SearchStrategy[str] | str) -> st.SearchStrategy[tuple[str, str]]:
    return joined(*parts).map(lambda t: (t, t))


#: Every shape: a strategy of ``(text to plant, what must not survive)``.
SHAPES: list[st.SearchStrategy[tuple[str, str]]] = [
    token("ghp_", mixed(36)),
    token("github_pat_", mixed(22), "_", mixed(59)),
    token(st.sampled_from(["glpat-", "gldt-", "glrt-"]), mixed(20, 26)),
    token("xoxb-", chars(string.digits, 12), "-", mixed(24)),
    token("xapp-1-A", chars(UPPER_DIGITS, 10), "-", chars(string.digits, 13), "-", chars(HEX, 64)),
    token(st.sampled_from(["sk_live_", "rk_live_", "sk_test_"]), mixed(24, 99)),
    token("whsec_", mixed(32)),
    token(st.sampled_from(["AKIA", "ASIA"]), chars(UPPER_DIGITS, 16)),
    token("AIza", mixed(35)),
    token("GOCSPX-", mixed(28)),
    token("SK", chars(HEX, 32)),
    token("SG.", mixed(22), ".", mixed(43)),
    token("key-", chars(HEX, 32)),
    token(chars(HEX, 32), "-us", chars(string.digits, 1, 2)),
    token("npm_", mixed(36)),
    token("pypi-AgEIcHlwaS5vcmc", mixed(50, 120)),
    token("sk-", st.sampled_from(["", "proj-", "ant-api03-", "svcacct-"]), mixed(40, 120)),
    token("sq0csp-", mixed(43)),
    token("shpat_", chars(HEX, 32)),
    token("dop_v1_", chars(HEX, 64)),
    token("hvs.", mixed(95)),
    token("dapi", chars(HEX, 32)),
    token("sntryu_", chars(HEX, 64)),
    token("glsa_", mixed(32), "_", chars(HEX, 8)),
    token("NRAK-", chars(UPPER_DIGITS, 27)),
    token("hf_", chars(string.ascii_letters, 34)),
    token("lin_api_", mixed(40)),
    token("PMAK-", chars(HEX, 24), "-", chars(HEX, 34)),
    token(chars(string.digits, 9), ":AA", mixed(33)),
    token(mixed(3), "8Q~", mixed(34)),
    token("eyJ", mixed(20, 40), ".", mixed(20, 60), ".", mixed(20, 43)),
    cards().map(lambda c: (c, c)),
    ibans().map(lambda i: (i, i)),
    ssns().map(lambda s: (s, s)),
    emails(),
    pairs(),
    joined("Cookie: sessionid=", value).map(lambda t: (t, t.split("=", 1)[1])),
    joined("Bearer ", mixed(12, 40)).map(lambda t: (t, t.split(" ", 1)[1])),
    joined("https://app:", value, "@db.internal/x").map(lambda t: (t, t.split(":")[2].split("@")[0])),
]

# Text around a planted secret: no quotes or separators that would make it part of something else.
filler = st.text(alphabet=ALNUM + " .,;!?()#", max_size=30)


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, str]:
    text, needle = draw(st.one_of(SHAPES))
    before, after = draw(filler), draw(filler)
    assume(needle not in f"{before} {after}")  # the filler must not hold the needle itself
    return f"{before} {text} {after}", needle


def positions(text: str) -> dict[str, Any]:
    """The text as a message, a field, a nested field, a list item and an exception."""
    return {"message": text, "note": text, "payment": {"detail": {"why": text}}, "lines": ["a", text],
            "error": ValueError(text)}


@settings(max_examples=600, deadline=None)
@given(planted())
def test_it_lets_no_generated_secret_survive(plant: tuple[str, str]) -> None:
    text, needle = plant
    out = Redactor().redact(positions(text))
    dumped = orjson.dumps(out).decode()
    assert needle not in dumped, out
    assert needle not in Redactor().redact_text(text)
    assert ServerRedactor().redact_record({"message": text, "note": {"x": text}}) == Redactor().redact(
        {"message": text, "note": {"x": text}}
    )


# -- look-alikes -------------------------------------------------------------------------------------


@st.composite
def isbns(draw: st.DrawFn) -> str:
    digits = draw(st.sampled_from(["978", "979"])) + draw(chars(string.digits, 9))
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10) % 10
    number = f"{digits}{check}"
    return f"{number[:3]}-{number[3]}-{number[4:6]}-{number[6:12]}-{number[12]}" if draw(st.booleans()) else number


timestamps = st.datetimes(datetime.datetime(2000, 1, 1), datetime.datetime(2040, 1, 1))
LOOK_ALIKES: list[st.SearchStrategy[str]] = [
    st.uuids().map(str),
    st.binary(min_size=8, max_size=32).map(bytes.hex).filter(lambda h: not h.isdigit()),
    st.binary().map(lambda b: hashlib.sha1(b).hexdigest()),
    st.binary().map(lambda b: hashlib.sha256(b).hexdigest()),
    st.integers(10**12, 2 * 10**12).map(str),  # epoch milliseconds
    st.integers(10**14, 2 * 10**14 - 1).map(str),  # 15-digit thread ids
    isbns(),
    timestamps.map(lambda t: t.isoformat()),
    timestamps.map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S")),
    st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 999)).map(lambda v: f"v{v[0]}.{v[1]}.{v[2]}"),
    st.tuples(st.integers(0, 9), st.integers(0, 99), st.integers(0, 99)).map(lambda v: f"{v[0]}.{v[1]}.{v[2]}-rc.1"),
    st.decimals(0, 10**9, places=2, allow_nan=False).map(lambda d: f"{d:,}"),
    st.decimals(0, 10**9, places=2, allow_nan=False).map(str),
    st.tuples(chars(string.ascii_lowercase + "-", 1, 12), st.integers(1, 4), st.sampled_from(["png", "webp", "svg"]))
    .map(lambda v: f"{v[0]}@{v[1]}x.{v[2]}"),
    st.integers(0, 10**15).map(lambda n: f"ord_{n}"),
]
# Words that cannot meet a look-alike to form a secret (no "token", "basic", "bearer": no b, no k).
safe_words = st.text(alphabet="acdefghijlmnopqrstuvwxyz ", max_size=20)


@settings(max_examples=600, deadline=None)
@given(st.one_of(LOOK_ALIKES), safe_words, safe_words)
def test_it_never_changes_a_generated_look_alike(look_alike: str, before: str, after: str) -> None:
    text = f"{before} {look_alike} {after}"
    redactor = Redactor()
    assert redactor.redact_text(text) == text
    assert redactor.redact({"note": text, "items": [look_alike]}) == {"note": text, "items": [look_alike]}
    if look_alike.isdigit():
        assert redactor.redact({"n": int(look_alike)}) == {"n": int(look_alike)}
