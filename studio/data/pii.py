"""Personal data: e-mail addresses, phone numbers, Chinese ID numbers and bank card numbers.

ID and card numbers are only counted when their check digit is right (ISO 7064 for the 18-digit
Chinese resident ID, Luhn for cards), so order numbers and amounts are not flagged by accident.
Each kind is masked with a visible placeholder, so a masked answer still reads naturally.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CN_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
PHONE = re.compile("|".join([
    r"(?<![\d+])(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)",  # Chinese mobile
    r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)",  # Chinese landline with area code
    r"(?<![\w+])\+\d{1,3}[ -]?(?:\(\d{1,4}\)[ -]?)?\d{2,4}(?:[ -]?\d{2,4}){1,3}(?!\d)",  # international
    r"(?<!\d)\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)",  # North American
]))
MASKS = {"email": "[EMAIL]", "id_number": "[ID_NUMBER]", "bank_card": "[BANK_CARD]", "phone": "[PHONE]"}
_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
MAYBE = re.compile(r"[\d@]").search  # every kind needs a digit or an @: text without one is skipped


def valid_cn_id(s: str) -> bool:
    total = sum(int(d) * w for d, w in zip(s[:17], _ID_WEIGHTS))
    return "10X98765432"[total % 11] == s[17].upper()


def luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def scan(text: str) -> tuple[str, list[str]]:
    """(text with personal data masked, kinds found in order). E-mails and IDs go first so that
    their digits are not read again as phone or card numbers."""
    if not MAYBE(text):
        return text, []
    found: list[str] = []

    def sub(text, pattern, kind, valid=None):
        def repl(m):
            if valid and not valid(m.group(0)):
                return m.group(0)
            found.append(kind)
            return MASKS[kind]
        return pattern.sub(repl, text)

    text = sub(text, EMAIL, "email")
    text = sub(text, CN_ID, "id_number", valid_cn_id)
    text = sub(text, CARD, "bank_card", lambda s: luhn(re.sub(r"\D", "", s)))
    text = sub(text, PHONE, "phone")
    return text, found
