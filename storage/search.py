"""The contact search index: per number, a ZSET of normalised name words and phone digits.

Every member has score 0, so Redis orders the set lexicographically and `ZRANGEBYLEX` answers
"every member starting with P" in O(log N + M) without scanning contacts. A member is
`<token>\\0<contact key>`: the NUL separator sorts below every token byte, so a prefix range
of the token catches exactly the members whose token starts with it.

- Name tokens are the words of the name, accents stripped and case-folded ("João Silva" gives
  `joao`, `silva`), so a query word matches when it is a prefix of any word.
- Phone tokens are `#` + digits of the canonical number (Brazilian mobiles with the ninth
  digit): for a Brazilian number its national number, for others the digits from each place
  the country code may end (bot.contacts.phone_tokens). A query is looked up in each of its
  spellings (with or without country code, area code or ninth digit: bot.contacts.Query),
  whole or in part, as prefixes. The `#` keeps them apart from name words, which never
  contain it.

The tokens come from bot.contacts (`name_tokens`, `phone_tokens`, `Query`). The write side runs
inside the contacts store's scripts, so the index changes atomically with the name it
indexes; this module answers the reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from bot.contacts import Query
from storage import keys

# Members read per prefix range: a one-letter prefix on a big number stops here (the answer
# says it was truncated; a longer prefix narrows it).
CANDIDATES_MAX: Final = 1000


# One number's answer, computed next to the data (one round trip, no candidate list crosses
# the network): the prefix ranges of the index; for a phone query their union; for a name
# query the smallest complete range, each candidate checked against the other words through
# the tokens its contact hash keeps (`ixn`); then the candidates' recency scores, and the
# first `limit` by score descending, key ascending. Returns {truncated, matched, key, score,
# key, score, ...}; truncated (1) when a range used was cut at `cap`.
_TOP_LUA: Final = """
local ix, recent = KEYS[1], KEYS[2]
local contact_prefix, kind, cap, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local prefixes = {}
for i = 5, #ARGV do prefixes[#prefixes + 1] = ARGV[i] end
local function range(prefix, most)
  local members = redis.call('ZRANGEBYLEX', ix, '[' .. prefix, '[' .. prefix .. '\\255',
                             'LIMIT', 0, most)
  local out = {}
  for _, m in ipairs(members) do
    out[#out + 1] = string.sub(m, string.find(m, '\\0', 1, true) + 1)
  end
  return out, #members >= most
end
local function has_words(key)
  local tokens = redis.call('HGET', contact_prefix .. key, 'ixn') or ''
  for _, p in ipairs(prefixes) do
    local found = false
    for t in string.gmatch(tokens, '%S+') do
      if string.sub(t, 1, #p) == p then found = true break end
    end
    if not found then return false end
  end
  return true
end
local candidates, truncated = {}, false
if kind == 'phone' then
  -- A phone query has a prefix per spelling (up to a couple of hundred for a number typed
  -- without its area code); together they read at most `cap` members.
  local seen = {}
  for _, p in ipairs(prefixes) do
    if #candidates >= cap then truncated = true break end
    local found, cut = range(p, cap - #candidates)
    truncated = truncated or cut
    for _, k in ipairs(found) do
      if not seen[k] then seen[k] = true candidates[#candidates + 1] = k end
    end
  end
else
  local best, best_cut = nil, true
  for _, p in ipairs(prefixes) do
    local found, cut = range(p, cap)
    if best == nil or (best_cut and not cut) or (best_cut == cut and #found < #best) then
      best, best_cut = found, cut
    end
  end
  truncated = best_cut
  if #prefixes == 1 then
    candidates = best
  else
    for _, k in ipairs(best) do
      if has_words(k) then candidates[#candidates + 1] = k end
    end
  end
end
local scored = {}
for _, k in ipairs(candidates) do
  scored[#scored + 1] = {tonumber(redis.call('ZSCORE', recent, k) or '0'), k}
end
table.sort(scored, function(a, b)
  if a[1] ~= b[1] then return a[1] > b[1] end
  return a[2] < b[2]
end)
local out = {truncated and 1 or 0, #scored}
for i = 1, math.min(limit, #scored) do
  out[#out + 1] = scored[i][2]
  out[#out + 1] = string.format('%d', scored[i][1])
end
return out
"""


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
        self._top = redis.register_script(_TOP_LUA)

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
