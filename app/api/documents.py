"""Reading GPS documents from a request body (raw or multipart), shared by the upload and match endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from app.schemas import TripsIn
from app.services import uploads
from app.services.errors import field_error

__all__ = ["UPLOAD_DOC", "read_documents"]


def _self_contained(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its nested models inlined: the body is read by hand, so FastAPI does not put
    ``model`` in the document's components and a ``$ref`` to it would dangle (ReDoc refuses the whole document)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return inline(schema)


UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Trips as JSON (`{\"trips\": [{\"id\", \"points\": [[lon, lat], ...], \"times\"}]}`), "
        "GeoJSON (LineString / MultiPoint features; times in `properties.times`), or a GPX / CSV document "
        "(raw body or multipart `file` upload; CSV columns `trip_id, lon, lat, timestamp`).",
        "content": {
            "application/json": {"schema": _self_contained(TripsIn)},
            "application/geo+json": {"schema": {
                "type": "object", "required": ["type"],
                "properties": {"type": {"type": "string", "enum": [
                    "FeatureCollection", "Feature", "LineString", "MultiLineString", "MultiPoint", "Point"]}},
            }},
            "application/gpx+xml": {"schema": {"type": "string", "minLength": 1, "pattern": "\\S"}},
            "text/csv": {"schema": {"type": "string", "minLength": 1, "pattern": "\\S"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "array", "minItems": 1, "maxItems": 20,
                                            "items": {"type": "string", "format": "binary"}}},
                },
                # the format of a file comes from its name, else from its part's content type
                "encoding": {"file": {"contentType": "application/gpx+xml, text/csv, application/geo+json"}},
            },
        },
    }
}


#: Most files (and other fields) of a multipart upload.
_MAX_PARTS = 20


async def read_documents(request: Request) -> list[uploads.Document]:
    """The documents of the body: each ``file`` part of a multipart upload, or the raw body.

    Only the bytes are read here (the multipart parser streams); parsing them is CPU work
    that runs on the thread pool with the rest of the upload.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=_MAX_PARTS, max_fields=_MAX_PARTS)
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise field_error("body.file", "at least one file is required")
        return [uploads.Document(await f.read(), f.filename, f.content_type) for f in files]
    return [uploads.Document(await request.body(), None, ctype, is_body=True)]
