"""The contact search index: per number, a ZSET of normalised name words and phone digits.

Every member has score 0, so Redis orders the set lexicographically and `ZRANGEBYLEX` answers
"every member starting with P" in O(log N + M) without scanning contacts. A member is
`<token>\\0<contact key>`: the NUL separator sorts below every token byte, so a prefix range
of the token catches exactly the members whose token starts with it.

- Name tokens are the words of the name, accents stripped and case-folded ("João Silva" gives
  `joao`, `silva`), so a query word matches when it is a prefix of any word.
- Phone tokens are `#` + digits of the canonical number (Brazilian mobiles with the ninth
  digit): for a Brazilian number its national number, for others the digits from each place
  the country code may end (bot.domain.contacts.phone_tokens). A query is looked up in each of its
  spellings (with or without country code, area code or ninth digit: bot.domain.contacts.Query),
  whole or in part, as prefixes. The `#` keeps them apart from name words, which never
  contain it.

The tokens come from bot.domain.contacts (`name_tokens`, `phone_tokens`, `Query`). The write side
runs
inside the contacts store's scripts, so the index changes atomically with the name it
indexes; this module answers the reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from bot.domain.contacts import Query
from storage import keys, lua

# Members read per prefix range: a one-letter prefix on a big number stops here (the answer
# says it was truncated; a longer prefix narrows it).
CANDIDATES_MAX: Final = 1000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Top:
    """One number's answer: the first matches as (recency score, contact key), best first;
    how many matched in all; whether a prefix range was cut at CANDIDATES_MAX."""

    hits: list[tuple[int, str]]
    matched: int
    truncated: bool


class SearchIndex:
    """Reads `dl:ctix:*` (written by storage.contacts), the recency index and the contacts'
    name tokens."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._top = lua.register(redis, "search_top")

    async def top(self, numbers: Sequence[str], query: Query, limit: int) -> dict[str, Top]:
        """The contacts matching `query` on each number, the `limit` most recent first (ties
        by contact key), in one round trip whatever the number of numbers.

        A phone query keeps the contacts whose number matches any of its spellings; a name
        query those whose name has, for every query word, a word starting with it.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            for number in numbers:
                await self._top(
                    keys=[keys.contact_index(number), keys.contacts_recent(number)],
                    args=[
                        keys.contact(number, ""),
                        query.kind,
                        CANDIDATES_MAX,
                        limit,
                        *query.prefixes,
                    ],
                    client=pipe,
                )
            replies = await pipe.execute()
        out: dict[str, Top] = {}
        for number, reply in zip(numbers, replies, strict=True):
            flat = [_text(v) if isinstance(v, bytes | str) else v for v in reply]
            pairs = flat[2:]
            hits = [(int(pairs[i + 1]), str(pairs[i])) for i in range(0, len(pairs), 2)]
            out[number] = Top(hits, int(flat[1]), bool(flat[0]))
        return out
