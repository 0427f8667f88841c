"""The demo library's catalogue feed: new titles (invented) in the categories demo patrons borrow or list as
interests, at the branches and library-wide, three of them the library's picks, so that a campaign's
preview shows the recommendations block and Campaigns → New materials has a feed to show.

Written as the catalogue import would leave it (crmcore/imports/catalogue.py): item categories from the
vocabulary, http(s) links, dates added inside the feed's window.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection

from crmcore.models import CatalogueItem, utcnow

LINK = "https://catalogue.example.org/record/{number}"
PICKS = 3  # the first items are the library's picks
# title, author, material type, categories, branch code (None: the whole library)
ITEMS = [
    ("The Lantern Keeper's Daughter", "Maren Holt", "Book", ["Fiction"], None),
    ("Salt on the Window", "Idris Okoye", "Book", ["Mystery"], "CEN"),
    ("A Year of Small Gardens", "Pia Lindqvist", "Book", ["Gardening"], None),
    ("The Quiet Ledger", "Ruth Abernathy", "Book", ["Mystery", "Thriller"], "RIV"),
    ("Fog over Millbrook", "Daniel Osei", "Large print", ["Mystery"], "NGT"),
    ("Letters from the Orchard", "Camille Ferrand", "Book", ["Romance"], "EWD"),
    ("Second Chances at Harbor Street", "Lena Marsh", "eBook", ["Romance"], None),
    ("The Bridge Builder: A Life", "Thomas Achebe", "Book", ["Biography"], "CEN"),
    ("She Drew the Stars", "Nadia Petrova", "eAudiobook", ["Biography", "Science"], None),
    ("River Towns of the Old Frontier", "Walter Greaves", "Book", ["History"], "SSD"),
    ("Empires of Salt and Silk", "Ananya Rao", "Book", ["History"], None),
    ("How Tides Remember", "Kenji Mori", "Book", ["Science", "Nature"], "HCR"),
    ("The Pocket Guide to Everyday Physics", "Grace Whitfield", "eBook", ["Science"], None),
    ("Nobody Told Us About Tuesday", "Ari Castillo", "Book", ["Young adult"], "NGT"),
    ("The Summer We Built a Radio", "Maya Brennan", "Book", ["Young adult"], "EWD"),
    ("Slow Trains Across Europe", "Henrik Dahl", "Book", ["Travel"], None),
    ("Walking the Coast Road", "Siobhan Keane", "Book", ["Travel"], "RIV"),
    ("Begin Where You Are", "Tariq Haddad", "Book", ["Self-help"], "CEN"),
    ("The Ten-Minute Morning", "Helen Park", "eAudiobook", ["Self-help", "Health"], None),
    ("Songs the River Sang", "Abe Friedman", "Book", ["Music"], "SSD"),
    ("Learning the Fiddle at Fifty", "Olga Ivanova", "Book", ["Music"], None),
    ("One Pot, Every Night", "Rosa Delgado", "Book", ["Cooking"], "CEN"),
    ("Bread for Beginners", "Linh Tran", "Book", ["Cooking"], "HCR"),
    ("The Seed Library Handbook", "Kofi Mensah", "Book", ["Gardening"], "SSD"),
    ("Beyond the Ninth Moon", "Zoe Nakamura", "Book", ["Science fiction"], None),
    ("The Clockwork Archive", "Elijah Stone", "eBook", ["Science fiction"], "NGT"),
    ("Knit, Mend, Make Do", "Freya Larsen", "Book", ["Crafts"], "EWD"),
    ("Paper Lanterns and Other Projects", "Mei Chen", "Book", ["Crafts"], None),
    ("Our Town in Photographs, 1900–1960", "Margaret Kelly", "Book", ["Local history"], "CEN"),
    ("The Mill District Remembers", "James Nowak", "Book", ["Local history"], "RIV"),
    ("Strong at Any Age", "Priya Shah", "Book", ["Health"], None),
    ("First Year, Fewer Tears", "Samuel Okafor", "Book", ["Parenting"], "HCR"),
    ("Raising Readers", "Anya Petrov", "Book", ["Parenting"], None),
]


def generate(conn: Connection, *, today: date, branch_ids: dict[str, int]) -> dict[str, int]:
    """Insert the feed on `conn` (inside the caller's transaction), dated in the last five weeks; returns the count."""
    now = utcnow()
    rows = [
        {"link": LINK.format(number=10_001 + number), "title": title, "author": author, "material_type": material, "categories": categories,
         "branch_id": branch_ids[branch] if branch else None, "cover_url": None, "added_on": today - timedelta(days=(number * 3) % 35),
         "is_pick": number < PICKS, "imported_at": now}
        for number, (title, author, material, categories, branch) in enumerate(ITEMS)
    ]
    conn.execute(CatalogueItem.__table__.insert(), rows)
    return {"new materials": len(rows)}
