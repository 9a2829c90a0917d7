"""What schemathesis must know of ludex's API beyond its OpenAPI document.

The document states every rule JSON Schema can state (see ludex_domain::schema). The rules it
cannot state are named there as formats, and each is taught here: a strategy that draws only
values the rule allows. Where a value's validity depends on what is stored, the case is filtered,
exactly for those values, with the reason next to the filter. Bounds are read from the served
document (LUDEX_OPENAPI, a file the fuzz script saves), never repeated here.
"""

import datetime
import json
import os
import re
import struct
import zlib

import schemathesis
from hypothesis import strategies as st

with open(os.environ["LUDEX_OPENAPI"], encoding="utf-8") as file:
    DOCUMENT = json.load(file)
GAME = DOCUMENT["components"]["schemas"]["GameInput"]
RELEASE_DATE = GAME["properties"]["release_date"]


@st.composite
def release_dates(draw):
    """ludex-release-date: YYYY, YYYY-MM or YYYY-MM-DD, a date that exists (2015-02-30 does
    not), in the years formatMinimum-formatMaximum."""
    first = int(RELEASE_DATE["formatMinimum"])
    last = int(RELEASE_DATE["formatMaximum"])
    date = draw(st.dates(datetime.date(first, 1, 1), datetime.date(last, 12, 31)))
    return draw(st.sampled_from([f"{date.year:04}", date.strftime("%Y-%m"), date.isoformat()]))


schemathesis.openapi.format("ludex-release-date", release_dates())

# ludex-search: at most 8 distinct words of at most 40 characters (the document's maxLength
# bounds the whole). Words are letters and digits; anything else separates them.
SEARCH_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789éßж", min_size=1, max_size=40)
schemathesis.openapi.format(
    "ludex-search",
    st.tuples(st.lists(SEARCH_WORD, max_size=8), st.sampled_from([" ", ", ", "-", " & "])).map(
        lambda parts: parts[1].join(parts[0])
    ),
)

# ludex-cursor: only a next_cursor the service issued for the same filters and sort is valid,
# and which ones exist is state. The one cursor valid for every query is the empty one (the
# first page); real cursors are tested in crates/ludex/tests (api.rs, the conformance suite).
schemathesis.openapi.format("ludex-cursor", st.just(""))

# ludex-etag: If-Match must name the game's current version, which is state; `*` matches any
# version. A stale version is answered 412, as the document says.
schemathesis.openapi.format("ludex-etag", st.just("*"))

# ludex-filter: the query string of GET /games, whose own parameters (and their bounds) the
# document states there; the filters sent are a few valid ones.
schemathesis.openapi.format(
    "ludex-filter",
    st.sampled_from(["", "platform=PC", "genre=RPG&year_from=2000", "q=witcher", "min_rating=9"]),
)

# ludex-mapping: a CSV column mapping names known fields (or extra.NAME, or nothing to drop a
# column); which headers it may name depends on the file, so the mappings sent are ones any file
# with a `title` column can take.
schemathesis.openapi.format(
    "ludex-mapping",
    st.sampled_from(["", "Title=title", "Title=title,Notes=", "Title=title,Studio=extra.studio"]),
)

# A cover must be an image that decodes (bytes that only start like one are a 422, as the
# document says), recognised by its first bytes whatever the Content-Type says: so every cover
# sent is a real PNG, of a drawn size and colour, built here (the standard library has zlib).
def png(width, height, rgb):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


COVERS = st.builds(png, st.integers(1, 64), st.integers(1, 64), st.tuples(*[st.integers(0, 255)] * 3))
for media_type in ("image/jpeg", "image/png", "image/webp"):
    schemathesis.openapi.media_type(media_type, COVERS)

KNOWN = set(GAME["properties"])
# The limits on unknown fields, from the sentence of the document that states them.
EXTRA_MAX_FIELDS, EXTRA_MAX_BYTES = map(
    int, re.search(r"at most (\d+) of them, taking at most (\d+) bytes", GAME["description"]).groups()
)


@schemathesis.hook
def filter_body(ctx, body):
    if not isinstance(body, dict) or ctx.operation is None:
        return True
    extra = {k: v for k, v in body.items() if k not in KNOWN}
    if ctx.operation.method.upper() == "PATCH":
        # Null removes a field; only the fields that stay count.
        extra = {k: v for k, v in extra.items() if v is not None}
        # A currency needs a price; in a patch the price may be the stored one, which is state.
        if body.get("currency") is not None and body.get("price") is None:
            return False
    # JSON Schema cannot count only the properties it does not name, nor measure bytes: at most
    # EXTRA_MAX_FIELDS unknown fields, taking at most EXTRA_MAX_BYTES bytes of JSON as sent.
    if len(extra) > EXTRA_MAX_FIELDS:
        return False
    return len(json.dumps(extra, separators=(",", ":")).encode()) <= EXTRA_MAX_BYTES


ID_PATTERN = re.compile(GAME["properties"]["id"]["pattern"])


def valid_id(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value >= 0 and float(value).is_integer()
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


@schemathesis.hook
def map_case(ctx, case):
    """The id in a body that replaces or patches a game must be the path's: a tie between body
    and path that JSON Schema cannot state. A valid id in such a body becomes the path's (an
    invalid one stays, so a case meant to be rejected still is)."""
    body = case.body
    path_id = (case.path_parameters or {}).get("id")
    if (
        case.operation.method.upper() in ("PUT", "PATCH")
        and case.operation.path == "/games/{id}"
        and isinstance(body, dict)
        and valid_id(body.get("id"))
        and valid_id(path_id)
    ):
        case.body = {**body, "id": path_id}
    return case


@schemathesis.hook
def filter_case(ctx, case):
    """A raw upload body needs ?filename= (a form's file part carries its own name): a tie
    between a parameter and the body's media type that OpenAPI cannot state. Those cases are
    answered 400 naming `filename`, as the document says, and are left out."""
    if case.operation.method.upper() == "POST" and case.operation.path == "/uploads":
        raw = not (case.media_type or "").startswith("multipart/")
        return not (raw and not (case.query or {}).get("filename"))
    return True
