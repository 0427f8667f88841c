"""A Koha-style borrowers CSV of any size (seeded): the benchmark's input and the tests' big file.

Columns are Koha's patron import header; the columns Liaison does not keep (passwords, notes,
alternate contacts …) carry values too, so tests can prove they are dropped.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

HEADER = (
    "cardnumber,surname,firstname,middle_name,title,othernames,initials,pronouns,streetnumber,streettype,address,address2,"
    "city,state,zipcode,country,email,phone,mobile,fax,emailpro,phonepro,B_streetnumber,B_streettype,B_address,B_address2,"
    "B_city,B_state,B_zipcode,B_country,B_email,B_phone,dateofbirth,branchcode,categorycode,dateenrolled,dateexpiry,"
    "password_expiration_date,date_renewed,gonenoaddress,lost,debarred,debarredcomment,contactname,contactfirstname,"
    "contacttitle,borrowernotes,relationship,sex,password,secret,auth_method,flags,userid,opacnote,contactnote,sort1,sort2,"
    "altcontactfirstname,altcontactsurname,altcontactaddress1,altcontactaddress2,altcontactaddress3,altcontactstate,"
    "altcontactzipcode,altcontactcountry,altcontactphone,smsalertnumber,sms_provider_id,privacy,privacy_guarantor_fines,"
    "privacy_guarantor_checkouts,checkprevcheckout,updated_on,lastseen,lang,login_attempts,overdrive_auth_token,anonymized,"
    "autorenew_checkouts,primary_contact_method,patron_attributes"
).split(",")
FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farah", "Gus", "Hana", "Ivan", "José", "Kim", "Léa", "Mo", "Nia", "Omar", "Pia"]
LAST = ["Álvarez", "Brown", "Chen", "Dubois", "Evans", "Fischer", "García", "Hughes", "Ito", "Jensen", "Khan", "López", "Müller", "Nguyen"]
BRANCHES = ["CPL", "FFL", "MPL", "IPT", "FPL", "SPL"]
CATEGORIES = ["PT", "ST", "J", "YA", "S", "B"]
METHODS = ["email", "email", "email", "phone", "sms", ""]


def row(i: int, rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    enrolled = date(2015, 1, 1) + timedelta(days=rng.randrange(3650))
    values = dict.fromkeys(HEADER, "")
    values.update(
        cardnumber=f"2{i:09d}", surname=last, firstname=first, address=f"{rng.randrange(1, 999)} Main St", city="Springfield",
        state="IL", zipcode=f"627{rng.randrange(1, 13):02d}", country="USA",
        email=f"{first.lower().replace('é', 'e')}.{i}@example.org" if rng.random() < 0.8 else "",
        phone=f"(217) 555-{rng.randrange(10000):04d}" if rng.random() < 0.6 else "",
        dateofbirth=(date(1940, 1, 1) + timedelta(days=rng.randrange(29000))).isoformat(), branchcode=rng.choice(BRANCHES),
        categorycode=rng.choice(CATEGORIES), dateenrolled=enrolled.isoformat(), dateexpiry=(enrolled + timedelta(days=3 * 365)).isoformat(),
        borrowernotes=f"NOTE-SECRET-{i}", password=f"PWHASH-{i:x}", userid=f"user{i}", sex=rng.choice("MF"),
        primary_contact_method=rng.choice(METHODS), lang="en", privacy="1",
    )
    return values


def write(path: Path, *, rows: int, seed: int = 1, malformed_every: int = 0) -> list[int]:
    """Write `rows` patrons; every `malformed_every`-th row gets a bad email. Returns the bad rows' line numbers."""
    rng = random.Random(seed)
    bad_lines = []
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HEADER)
        writer.writeheader()
        for i in range(1, rows + 1):
            values = row(i, rng)
            if malformed_every and i % malformed_every == 0:
                values["email"] = f"broken.{i}@@example"
                bad_lines.append(i + 1)
            writer.writerow(values)
    return bad_lines
