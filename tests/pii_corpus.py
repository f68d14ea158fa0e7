"""Real-looking personal data to inject into real 311 descriptions: what the publish models must never let out.

Every item is a sentence a requester could write, with the sensitive value in it, and the sentence as it must be
published (the value replaced by its marker, or an address by its block). Values are generated from a fixed
seed: emails, phone numbers in the formats people type, social security numbers, payment-card numbers with a
valid Luhn check digit (Visa, Mastercard, Amex, Discover), names (after "my name is", "Name:", "Caller:" or a
title), and home addresses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 20241123

FIRST_NAMES = (
    "Ayesha", "Bartholomew", "Cordelia", "Desmond", "Evangeline", "Fitzgerald", "Genevieve", "Horatio", "Imogen",
    "Jebediah", "Katarina", "Leopold", "Marisol", "Nathaniel", "Octavia", "Percival", "Quintessa", "Rosalind",
    "Sebastian", "Theodora", "Ulysses", "Valentina", "Winifred", "Xiomara", "Yusuf", "Zenobia",
)
LAST_NAMES = (
    "Abernathy", "Blackwood", "Castellanos", "Drummond", "Ellsworth", "Fairbanks", "Galloway", "Hollingsworth",
    "Iverson", "Jankowski", "Kowalczyk", "Lindqvist", "Montgomery", "Nakamura", "O'Shaughnessy", "Pemberton",
    "Quattlebaum", "Rutherford", "Szymanski", "Thistlewood", "Underhill", "Vanderbilt", "Whitmore-Hale",
)
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "comcast.net", "epbfi.com", "hotmail.com", "outlook.com",
                 "utc.edu", "bellsouth.net", "icloud.com", "mail.chattanooga.gov")
AREA_CODES = ("423", "615", "865", "901", "706", "931")
STREETS = ("Oak St", "Maple Ave", "Hixson Pike", "Brainerd Rd", "Dodds Avenue", "Cherokee Blvd",
           "Signal Mountain Rd", "Bonny Oaks Dr", "Lee Hwy", "Ringgold Rd", "Gunbarrel Road", "Shallowford Rd")

EMAIL_TEMPLATES = ("Please email me at {v} with updates", "Contact: {v}", "my email is {v}.",
                   "You can reach me by email ({v}) any time", "Reply to {v} please")
PHONE_TEMPLATES = ("Call me at {v} if needed", "my phone is {v}, thanks", "Cell: {v}",
                   "please call back at {v}.", "Caller can be reached on {v} after five")
SSN_TEMPLATES = ("SSN {v} on file with the claim", "my social security number is {v}",
                 "claim form lists ssn: {v}")
CARD_TEMPLATES = ("I paid the fee with card {v} and was charged twice", "card number {v}",
                  "refund to {v} please")
NAME_TEMPLATES = ("My name is {v} and I drive this road daily", "my name is {v}, please fix this",
                  "Hello, my name is {v}. The hole keeps getting bigger", "MY NAME IS {v} and I called before",
                  "Caller: {v}. Hole in the right lane", "name: {v} - second report this month",
                  "Please ask for Mrs. {v}, she saw it first", "Mr {v} at the corner store called it in")
ADDRESS_TEMPLATES = ("I live at {v} and the road is bad", "My address is {v} if you need it")

MARKERS = {"email": "[redacted-email]", "phone": "[redacted-phone]", "ssn": "[redacted-ssn]",
           "card": "[redacted-card]", "name": "[redacted-name]"}


@dataclass(frozen=True)
class PiiItem:
    kind: str  # email, phone, ssn, card, name, address
    value: str  # the sensitive value: it must not appear in any published field
    text: str  # the sentence injected into a description
    published: str  # the sentence as it must be published


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    total = 0
    for i, digit in enumerate(reversed(body)):
        d = int(digit)
        if i % 2 == 0:  # doubled: every second digit from the right, the check digit not yet appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def _card(rng: random.Random, i: int) -> str:
    brand = i % 4
    if brand == 2:  # Amex: 15 digits, written 4-6-5
        number = luhn_complete(rng.choice(("34", "37")), 15, rng)
        groups = [number[:4], number[4:10], number[10:]]
    else:
        prefix = {0: "4", 1: rng.choice(("51", "52", "53", "54", "55", "2221", "2720")), 3: "6011"}[brand]
        number = luhn_complete(prefix, 16, rng)
        groups = [number[i:i + 4] for i in range(0, 16, 4)]
    return [" ".join(groups), "-".join(groups), "".join(groups)][i % 3]


def _phone(rng: random.Random, i: int) -> str:
    area, exchange = rng.choice(AREA_CODES), f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
    line = f"{rng.randint(0, 9999):04d}"
    formats = (f"({area}) {exchange}-{line}", f"{area}-{exchange}-{line}", f"{area}.{exchange}.{line}",
               f"{area} {exchange} {line}", f"{area}{exchange}{line}", f"+1 {area} {exchange} {line}",
               f"1-{area}-{exchange}-{line}", f"{area}/{exchange}-{line}", f"({area}){exchange}-{line}")
    return formats[i % len(formats)]


def _ssn(rng: random.Random, i: int) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    return [f"{area:03d}-{group:02d}-{serial:04d}", f"{area:03d} {group:02d} {serial:04d}",
            f"{area:03d}{group:02d}{serial:04d}"][i % 3]


def _name(rng: random.Random, i: int) -> str:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    if i % 5 == 4:
        return f"{first} {rng.choice(FIRST_NAMES)} {last}"
    return f"{first} {last}" if i % 7 else f"{first.lower()} {last.lower()}"


def _email(rng: random.Random, i: int) -> str:
    first, last = rng.choice(FIRST_NAMES).lower(), rng.choice(LAST_NAMES).lower().replace("'", "")
    local = [f"{first}.{last}", f"{first[0]}{last}{rng.randint(1, 99)}", f"{first}_{last}+311",
             f"{last}.{first}{rng.randint(1950, 2005)}"][i % 4]
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def _address(rng: random.Random, i: int) -> tuple[str, str]:
    number = rng.randint(100, 9999) if i % 4 else rng.randint(1, 99)
    street = rng.choice(STREETS)
    block = f"{number // 100 * 100} BLOCK OF" if number >= 100 else "0 BLOCK OF"
    return f"{number} {street}", f"{block} {street}"


def build_corpus() -> list[PiiItem]:
    rng = random.Random(SEED)
    items: list[PiiItem] = []
    plan = (("email", 45, _email, EMAIL_TEMPLATES), ("phone", 63, _phone, PHONE_TEMPLATES),
            ("ssn", 30, _ssn, SSN_TEMPLATES), ("card", 42, _card, CARD_TEMPLATES),
            ("name", 40, _name, NAME_TEMPLATES))
    for kind, count, make, templates in plan:
        for i in range(count):
            value = make(rng, i)
            template = templates[i % len(templates)]
            items.append(PiiItem(kind, value, template.format(v=value), template.format(v=MARKERS[kind])))
    for i in range(16):
        value, block = _address(rng, i)
        template = ADDRESS_TEMPLATES[i % len(ADDRESS_TEMPLATES)]
        items.append(PiiItem("address", value, template.format(v=value), template.format(v=block)))
    return items


CORPUS = build_corpus()
