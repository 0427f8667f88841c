"""The {{ recommendations }} merge block: up to N new items in the patron's top categories, nearest their
home branch first, each with the line "Because you like <category>".

A value with a text form (`str`) and an HTML form (`__html__`, every part escaped): the plain-text part of
a message gets the first, the HTML part the second, so the block is a list in both. A patron without
interests (or without a new item in them) gets the library's picks, or nothing, as the campaign says.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from sqlalchemy import select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.models import Branch, CatalogueItem, Patron
from crmcore.recommendations import interests

FALLBACKS = {"picks": "the library's picks", "none": "leave the block out"}
TOP = 3  # categories a patron's recommendations are drawn from
KEPT = 20_000  # distinct blocks a Chooser keeps (about 2 kB each with their text and HTML) before it starts afresh
PICK_REASON = "One of the library's picks"
HTML_START = '<ul class="recommendations"'  # what templates._paragraphs leaves unwrapped (the only raw markup in a body)


@dataclass(frozen=True)
class Item:
    id: int
    title: str
    author: str | None
    link: str
    cover_url: str | None
    branch_id: int | None
    categories: tuple[str, ...]
    is_pick: bool


@dataclass(frozen=True)
class Recommendation:
    item: Item
    because: str | None  # the category it was chosen for; None: one of the library's picks

    @property
    def reason(self) -> str:
        return f"Because you like {self.because}" if self.because else PICK_REASON


class Block:
    """What {{ recommendations }} puts in a message: text in the plain part, a list in the HTML part.

    Both forms are worked out once per block: patrons with the same categories at the same branch share one
    block (see `Chooser`), so a campaign renders each distinct list once, not once per recipient."""

    def __init__(self, items: tuple[Recommendation, ...] = ()):
        self.items = tuple(items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __str__(self) -> str:
        return self.text

    def __html__(self) -> str:
        return self.html

    @cached_property
    def text(self) -> str:
        lines = []
        for r in self.items:
            by = f" by {r.item.author}" if r.item.author else ""
            lines.append(f"* {r.item.title}{by}\n  {r.reason}\n  {r.item.link}")
        return "\n".join(lines)

    @cached_property
    def html(self) -> str:
        if not self.items:
            return ""
        parts = []
        for r in self.items:
            it = r.item
            cover = f'<img src="{html.escape(it.cover_url, quote=True)}" alt="" width="48" style="vertical-align:middle;margin-right:8px">' if it.cover_url else ""
            by = f" by {html.escape(it.author)}" if it.author else ""
            parts.append(f'<li style="margin-bottom:8px">{cover}<a href="{html.escape(it.link, quote=True)}">{html.escape(it.title)}</a>{by}'
                         f"<br><small>{html.escape(r.reason)}</small></li>")
        return f'{HTML_START} style="padding-left:20px">' + "".join(parts) + "</ul>"

    @property
    def categories(self) -> list[str]:
        return sorted({r.because for r in self.items if r.because})


EMPTY = Block()
SAMPLE = Block((
    Recommendation(Item(0, "The Sample Mystery", "A. Writer", "https://library.example/catalogue/1", None, None, ("Mystery",), False), "Mystery"),
    Recommendation(Item(0, "Gardens & <Greenhouses>", None, "https://library.example/catalogue/2", None, None, ("Gardening",), True), None),
))


def uses_block(body: str) -> bool:
    """Whether a body may use the block (worth working out for its recipients)."""
    return "recommendations" in body


def feed(session: Session) -> list[Item]:
    """The catalogue feed, newest first (ties by id): the order every choice starts from."""
    rows = session.execute(select(CatalogueItem).order_by(CatalogueItem.added_on.desc(), CatalogueItem.id.desc())).scalars()
    return [Item(r.id, r.title, r.author, r.link, r.cover_url, r.branch_id, tuple(r.categories or ()), r.is_pick) for r in rows]


def blocks(session: Session, patron_ids: list[int], *, fallback: str = "picks", today: date | None = None) -> dict[int, Block]:
    """Each patron's block (EMPTY where there is nothing to show)."""
    return Chooser(session, fallback=fallback).blocks(session, patron_ids, today=today)


class Chooser:
    """Blocks for one campaign's recipients, batch after batch: the feed, the branches and the library's picks
    are read once, and a block is chosen once per (categories, home branch) and shared by every patron with
    the same, so its text and HTML are worked out once. A patron's interests are read with each batch."""

    def __init__(self, session: Session, *, fallback: str = "picks"):
        if fallback not in FALLBACKS:
            raise ValueError(f"Recommendations: for patrons without interests choose {' or '.join(FALLBACKS.values())}.")
        self.fallback = fallback
        self.most = int(settings.get(session, "recommendations_per_message"))
        self.items = feed(session)
        self.zones = dict(session.execute(select(Branch.id, Branch.zone_id)).all()) if self.items else {}
        self.by_category: dict[str, list[Item]] = defaultdict(list)
        for item in self.items:
            for category in item.categories:
                self.by_category[category].append(item)
        self.picks = Block(tuple(Recommendation(it, None) for it in self.items if it.is_pick)[: self.most])
        self._chosen: dict[tuple[tuple[str, ...], int | None], Block] = {}

    def blocks(self, session: Session, patron_ids: list[int], *, today: date | None = None) -> dict[int, Block]:
        """Each of these patrons' block (EMPTY where there is nothing to show)."""
        ids = sorted(set(patron_ids))
        if not ids:
            return {}
        if not self.items:
            return dict.fromkeys(ids, EMPTY)
        homes: dict[int, int | None] = {}
        for chunk in interests.chunks(ids):
            homes.update(session.execute(select(Patron.id, Patron.branch_id).where(Patron.id.in_(chunk))).all())
        liked = interests.top_categories(session, ids, today=today, limit=TOP)
        return {pid: self.block(tuple(c for c, _why in liked.get(pid, ())), homes.get(pid)) for pid in ids}

    def block(self, cats: tuple[str, ...], home: int | None) -> Block:
        """The block of a patron who likes `cats` (most liked first) and whose home branch is `home`."""
        key = (cats, home)
        if key not in self._chosen:
            if len(self._chosen) >= KEPT:
                self._chosen.clear()
            chosen = _chosen(list(cats), self.by_category, home=home, zone=self.zones.get(home), zones=self.zones, most=self.most)
            self._chosen[key] = Block(chosen) if chosen else (self.picks if self.fallback == "picks" else EMPTY)
        return self._chosen[key]


def _chosen(cats: list[str], by_category: dict[str, list[Item]], *, home: int | None, zone: int | None, zones: dict, most: int) -> tuple[Recommendation, ...]:
    """Round robin over the categories, most liked first; in each, items at the home branch first, then the
    whole library's and the same zone's, then elsewhere; newest first within each (the feed's order)."""

    def near(item: Item) -> int:
        if home is not None and item.branch_id == home:
            return 0
        if item.branch_id is None or (zone is not None and zones.get(item.branch_id) == zone):
            return 1
        return 2

    queues = [sorted(by_category.get(c, []), key=near) for c in cats]  # sorted() is stable: the feed's order within
    chosen: list[Recommendation] = []
    used: set[int] = set()
    while len(chosen) < most and any(queues):
        for category, queue in zip(cats, queues):
            while queue and queue[0].id in used:
                queue.pop(0)
            if queue and len(chosen) < most:
                item = queue.pop(0)
                used.add(item.id)
                chosen.append(Recommendation(item, category))
    return tuple(chosen)
