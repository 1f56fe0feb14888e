"""A schemathesis check for benchmarks/schemathesis_check.sh: a schema-valid request may be refused (422) only for
what no schema can state, never for syntax the OpenAPI document left out.

schemathesis.toml lets positive data get a 422 (a point off the network, trips that cannot be matched, a GPX document
whose text is not GPX: the document cannot say where the roads are); this check makes sure such a 422 is one of those
reasons and not ``validation_error`` or ``invalid_json``, which would mean the document is looser than the server.
"""

from __future__ import annotations

import re

import schemathesis

#: 422 codes a schema-valid request can get: facts about the network or the content of a document.
SEMANTIC = {"point_off_network", "map_matching_failed", "unknown_segment", "invalid_path", "unreachable_destination",
            "no_trips_accepted", "invalid_gps_data", "numerical_range", "invalid_trace", "roads_error",
            "idempotency_key_reused"}  # the same key sent with another body (the IETF draft's 422)


#: ``validation_error`` messages of rules between fields that JSON Schema cannot state.
CROSS_FIELD = re.compile(r"times has \d+ entries for \d+ points")


@schemathesis.check
def refused_only_for_semantics(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError("a 422 whose body is not JSON") from None
    code = body.get("code") if isinstance(body, dict) else None
    if code == "validation_error" and CROSS_FIELD.search(str(body.get("message"))):
        return None
    if code == "invalid_json" and str(getattr(case, "media_type", "") or "").startswith("multipart/"):
        return None  # a file's bytes are any bytes to the schema; whether they are JSON is their content
    if code not in SEMANTIC:
        raise AssertionError(f"a schema-valid request was refused as {code!r}: {body.get('message')!r} "
                             "(the OpenAPI document does not state this constraint)")
    return None
