"""New materials and what patrons like: the catalogue feed (no patron data) and the topics a patron chose."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class CatalogueItem(SQLModel, table=True):
    """One new title from the catalogue feed (recent acquisitions): the library's stock, never a patron's loan."""

    __tablename__ = "catalogue_item"
    id: Optional[int] = Field(default=None, primary_key=True)
    link: str = Field(unique=True, max_length=500)  # the catalogue page, http(s): the upsert key
    title: str = Field(max_length=300)
    author: Optional[str] = Field(default=None, max_length=200)
    material_type: Optional[str] = Field(default=None, max_length=80)
    categories: list[str] = Field(default_factory=list, sa_type=JSON)  # terms of the item-category vocabulary
    branch_id: Optional[int] = Field(default=None, foreign_key="branch.id")  # None: any branch
    cover_url: Optional[str] = Field(default=None, max_length=500)
    added_on: date = Field(index=True)
    is_pick: bool = False  # one of the library's picks (for patrons without interests)
    imported_at: datetime = Field(default_factory=utcnow)


class PatronInterest(SQLModel, table=True):
    """A topic (an item category) the patron chose on their preference page."""

    __tablename__ = "patron_interest"
    patron_id: int = Field(foreign_key="patron.id", primary_key=True)
    category: str = Field(primary_key=True, max_length=80)
    chosen_at: datetime = Field(default_factory=utcnow)
