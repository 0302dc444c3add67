"""What makes a digit run a payment card number, and a string an IBAN (the checks behind the patterns)."""

from __future__ import annotations

from typing import Final

#: IBAN length by country (SWIFT's IBAN registry).
IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only digits) passes the Luhn checksum used by payment cards."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _issuer_lengths(digits: str) -> range | tuple[int, ...]:
    """The lengths valid for the issuer whose IIN ``digits`` starts with; empty for no known issuer."""
    first = digits[0]
    if first == "4":
        return (13, 16, 19)  # Visa
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if first == "5":
        if 51 <= two <= 55:
            return (16,)  # Mastercard
        if four in (5018, 5020, 5038, 5893):
            return range(12, 20)  # Maestro
        return ()
    if first == "2":
        if 2221 <= four <= 2720:
            return (16,)  # Mastercard's 2-series
        if 2200 <= four <= 2204:
            return range(16, 20)  # Mir
        return ()
    if first == "3":
        if two in (34, 37):
            return (15,)  # American Express
        if 3528 <= four <= 3589:
            return range(16, 20)  # JCB
        if 300 <= int(digits[:3]) <= 305 or four == 3095 or two in (36, 38, 39):
            return range(14, 20)  # Diners Club
        return ()
    if first == "6":
        if four == 6011 or 644 <= int(digits[:3]) <= 649 or two == 65 or 622126 <= six <= 622925:
            return range(16, 20)  # Discover
        if two == 62:
            return range(16, 20)  # UnionPay
        if four in (6304, 6759, 6761, 6762, 6763):
            return range(12, 20)  # Maestro
    return ()


def is_card_number(digits: str) -> bool:
    """A payment card number: a known issuer prefix, a length valid for it, and the Luhn check.

    Epoch milliseconds, ISBN-13s and thread ids pass Luhn one time in ten, but start with no issuer's
    prefix (1, 97).
    """
    return 13 <= len(digits) <= 19 and len(digits) in _issuer_lengths(digits) and luhn_valid(digits)


def iban_valid(compact: str) -> bool:
    """The country's IBAN length and the mod-97 check (``compact``: no spaces)."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1
