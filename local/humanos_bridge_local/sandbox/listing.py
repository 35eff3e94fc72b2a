"""``GET /request``'s query: the filters and paging the official SDK sends, checked like a NestJS DTO.

The SDK (generated from Humanos's OpenAPI document) sends ``pageIndex`` (from 0), ``pageSize`` (5 to 100),
``search`` (at most 100 characters, matched case-insensitively inside the request's or a credential's name),
``dateFrom``/``dateTo`` (creation dates, whole UTC days; ``dateTo`` needs ``dateFrom``), ``subject`` (a
subject's contact or id), ``internalId`` and ``securityLevel`` (repeated for several levels). Messages follow
class-validator and never repeat the value that failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from humanos_bridge_local.sandbox.validation import SECURITY_LEVELS

PAGE_SIZE_MIN = 5
PAGE_SIZE_MAX = 100
#: Humanos does not document its default page size.
DEFAULT_PAGE_SIZE = 10
SEARCH_MAX_CHARS = 100
#: Parameters that take one value: sent twice, Express parses them into an array, which the DTO refuses.
SINGLE_VALUED = ("pageIndex", "pageSize", "search", "dateFrom", "dateTo", "subject", "internalId")


class QueryError(ValueError):
    """The query breaks the DTO's rules; ``messages`` are what the 400 answer lists."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class ListQuery:
    """One page of the stored requests that pass every filter given."""

    page_index: int = 0
    page_size: int = DEFAULT_PAGE_SIZE
    internal_id: str | None = None
    search: str | None = None
    subject: str | None = None
    security_levels: frozenset[str] = frozenset()
    date_from: date | None = None
    date_to: date | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        return (
            (self.internal_id is None or record["internalId"] == self.internal_id)
            and (not self.security_levels or record["securityLevel"] in self.security_levels)
            and (self.subject is None or any(self.subject in (s["contact"], s["id"]) for s in record["subjects"]))
            and (self.search is None or self._names_hold(record))
            and self._in_dates(record["createdAt"])
        )

    def _names_hold(self, record: dict[str, Any]) -> bool:
        assert self.search is not None
        wanted = self.search.casefold()
        names = [record["name"], *(c["name"] for c in record["credentials"])]
        return any(isinstance(name, str) and wanted in name.casefold() for name in names)

    def _in_dates(self, created_at: str) -> bool:
        created = datetime.fromisoformat(created_at)
        if self.date_from is not None and created < datetime.combine(self.date_from, time(), UTC):
            return False
        # dateTo "will be converted to end of day in UTC": the whole day counts.
        end = None if self.date_to is None else datetime.combine(self.date_to + timedelta(days=1), time(), UTC)
        return end is None or created < end


def parse(pairs: Sequence[tuple[str, str]]) -> ListQuery:
    """The query as sent (name, value pairs in order); QueryError listing every rule broken."""
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    errors = [f"{name} must be a string" for name in SINGLE_VALUED if len(values.get(name, [])) > 1]
    one = {name: found[0] for name, found in values.items() if len(found) == 1 and name in SINGLE_VALUED}
    page_index = _int(one, "pageIndex", 0, errors, minimum=0)
    page_size = _int(one, "pageSize", DEFAULT_PAGE_SIZE, errors, minimum=PAGE_SIZE_MIN, maximum=PAGE_SIZE_MAX)
    search = one.get("search")
    if search is not None and len(search) > SEARCH_MAX_CHARS:
        errors.append(f"search must be shorter than or equal to {SEARCH_MAX_CHARS} characters")
    levels = frozenset(values.get("securityLevel", []))
    if not levels <= set(SECURITY_LEVELS):
        errors.append(f"each value in securityLevel must be one of the following values: {', '.join(SECURITY_LEVELS)}")
    date_from = _day(one, "dateFrom", errors)
    date_to = _day(one, "dateTo", errors)
    if "dateTo" in one and "dateFrom" not in values:
        errors.append("dateFrom should not be empty when dateTo is given")
    if errors:
        raise QueryError(errors)
    return ListQuery(
        page_index=page_index,
        page_size=page_size,
        internal_id=one.get("internalId"),
        search=search or None,
        subject=one.get("subject"),
        security_levels=levels,
        date_from=date_from,
        date_to=date_to,
    )


def _int(
    one: dict[str, str], name: str, default: int, errors: list[str], *, minimum: int, maximum: int | None = None
) -> int:
    text = one.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit():
        errors.append(f"{name} must be an integer number")
        return default
    value = int(text)
    if value < minimum:
        errors.append(f"{name} must not be less than {minimum}")
    if maximum is not None and value > maximum:
        errors.append(f"{name} must not be greater than {maximum}")
    return value


def _day(one: dict[str, str], name: str, errors: list[str]) -> date | None:
    """The UTC day an ISO 8601 date or date-time falls on (a time without offset is taken as UTC)."""
    text = one.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        errors.append(f"{name} must be a valid ISO 8601 date string")
        return None
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()
