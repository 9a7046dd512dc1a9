"""The API's JSON parser: DRF's, refusing a body nested deeper than JSON_MAX_DEPTH before parsing it.

Python's json module recurses once per level of nesting, and so does everything that later walks
`request.data` (the serializers, the Idempotency-Key fingerprint's `json.dumps`). A 16 KB body of
`[` is 16,000 levels: the parser raised RecursionError, which became a 500. Catching RecursionError
would turn that one body into a 400, but the depth at which it strikes depends on how deep the
stack already is (a view, a middleware, a thread), and a body just under it would still parse and
then blow up in whatever recursed next. So the depth is checked first, by a flat scan that never
recurses, against an explicit cap that is part of the contract: no deep recursion happens at all,
and the same body gets the same answer wherever it is parsed.

The cap is far above any body the API takes (a basket is 3 levels: the object, `items`, a line)
and far below Python's recursion limit (1000) less the stack a request already has.
"""

from __future__ import annotations

import codecs
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]  # not in the stubs
from rest_framework.utils import json

JSON_MAX_DEPTH = 32

# A JSON string (whose brackets are text, not structure), or a bracket. The closing quote is
# optional so that an unterminated string is consumed once, to the end, rather than tried again
# from every later quote (quadratic); json.loads refuses such a body anyway.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def deeper_than(text: str, limit: int) -> bool:
    """Whether `text`'s arrays and objects nest more than `limit` levels deep (strings skipped)."""
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif bracket in ("]", "}"):
            depth -= 1
    return False


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSONParser, with a ParseError (400 `parse_error`) for a body nested too deep."""

    max_depth = JSON_MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})  # DRF's: refuses a bytes-to-bytes codec
        try:
            text = codecs.getreader(encoding)(stream).read()
            if deeper_than(text, self.max_depth):
                raise ParseError(f"JSON parse error - nested deeper than {self.max_depth} levels.")
            parse_constant = json.strict_constant if self.strict else None
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:  # a UnicodeDecodeError too, as in DRF's own parser
            raise ParseError(f"JSON parse error - {exc}") from exc
