"""The web page's routes without a browser: the page, its settings, the static files and the offline API docs.

tests/app/test_web.py drives the page itself in headless Chromium.
"""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from app.api.routes.web import STATIC_DIR, WEB_DIR
from app.main import create_app


def test_the_page_and_its_files_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {"/static/app.js", "/static/app.css", "/static/vendor/leaflet/leaflet.js"} <= set(assets)
    for url in assets:
        assert client.get(url).status_code == 200, url
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from elsewhere


def test_the_vendored_libraries_keep_their_licences_and_versions():
    versions = json.loads((STATIC_DIR / "vendor" / "versions.json").read_text())
    package = json.loads((WEB_DIR.parents[1] / "package.json").read_text())
    assert versions == package["dependencies"]  # vendored = the pinned versions (npm run vendor)
    for name in versions:
        assert (STATIC_DIR / "vendor" / name / "LICENSE").is_file(), name


def test_the_settings_of_the_page(client, settings_factory):
    c = client.get("/web/config.json").json()
    assert c["tile_url"] is None and c["api_key_required"] is False
    assert "OpenStreetMap" in c["attribution"]
    assert c["network"]["n_segments"] > 0 and len(c["network"]["bounds"]) == 4
    tiles = "https://tiles.example.org/{z}/{x}/{y}.png"
    with TestClient(create_app(settings_factory(api_key="k", tile_url=tiles))) as keyed:
        c = keyed.get("/web/config.json").json()
        assert c["tile_url"] == tiles and c["api_key_required"] is True
        assert keyed.get("/").status_code == 200  # the page itself needs no key


def test_the_api_docs_load_their_scripts_from_this_service(client):
    for path, script in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(path).text
        urls = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html) + re.findall(r"url: ?'([^']+)'", html)
        assert any(u.endswith(script) for u in urls), (path, urls)
        assert all(u.startswith("/") for u in urls), (path, urls)
        for u in urls:
            assert client.get(u).status_code == 200, u
    assert "fonts.googleapis" not in client.get("/redoc").text
    assert client.get("/openapi.json").status_code == 200


def test_the_openapi_document_has_no_dangling_reference(client):
    doc = client.get("/openapi.json").json()
    refs = set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs and refs <= set(doc["components"]["schemas"])  # ReDoc refuses a document with one


def test_the_web_routes_are_not_in_the_api_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/network" in paths and "/v1/network/usage" in paths
    assert not {"/", "/docs", "/redoc", "/web/config.json"} & set(paths)
