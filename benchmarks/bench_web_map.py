"""Which map library draws the network and a destination heat map fastest in headless Chromium (software GL)?

Draws the default network as ``GET /v1/network`` serves it (about 1,420 streets) plus a heat
map of 400 street segments, then replaces the heat map 11 times (a posterior update), with:
Leaflet on a canvas (what app/web uses), Leaflet with SVG, and MapLibre GL (WebGL, which
headless Chromium runs on SwiftShader) when ``node_modules/maplibre-gl`` exists
(``npm install --no-save maplibre-gl@5``; it is not a dependency of the page). Prints the first
render (navigation start -> drawn, after two animation frames or MapLibre's ``idle``) and the
median and worst update, per run and library, each library in a fresh browser.

    .venv/bin/python benchmarks/bench_web_map.py [--runs 3]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import statistics
import tempfile
import threading
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

COMMON = """
function frames(){return new Promise(r=>requestAnimationFrame(()=>requestAnimationFrame(r)));}
function perturb(heat, k){ const f = heat.features, n = f.length;
  return {type:'FeatureCollection', features: f.map((x,i)=>({...x, properties:{...x.properties,
    probability: f[(i+k)%n].properties.probability}}))}; }
function color(p){ return p>0.05?'#bd0026':p>0.01?'#f03b20':p>0.002?'#fd8d3c':'#fecc5c'; }
"""
LEAFLET = """<!doctype html><html><head><link rel=stylesheet href=leaflet/leaflet.css>
<style>body{margin:0}#map{width:1280px;height:800px}</style></head><body><div id=map></div>
<script src=common.js></script><script src=leaflet/leaflet.js></script><script>
(async()=>{
 const [net, heat] = await Promise.all([fetch('network.json').then(r=>r.json()), fetch('heat.json').then(r=>r.json())]);
 const map = L.map('map', %(options)s);
 const b = net.bounds; map.fitBounds([[b[1],b[0]],[b[3],b[2]]]);
 L.geoJSON(net, {interactive:false,
   style: f=>({color:'#999', weight: f.properties.class==='primary'?3:1.5})}).addTo(map);
 const hl = L.geoJSON(null, {interactive:false,
   style: f=>({color: color(f.properties.probability), weight:5})}).addTo(map);
 hl.addData(heat);
 await frames(); window.firstRender = performance.now();
 window.update = async (k) => {const t=performance.now(); hl.clearLayers(); hl.addData(perturb(heat,k)); await frames();
   return performance.now()-t;};
})();
</script></body></html>"""
MAPLIBRE = """<!doctype html><html><head><link rel=stylesheet href=maplibre/maplibre-gl.css>
<style>body{margin:0}#map{width:1280px;height:800px}</style></head><body><div id=map></div>
<script src=common.js></script><script src=maplibre/maplibre-gl.js></script><script>
(async()=>{
 const [net, heat] = await Promise.all([fetch('network.json').then(r=>r.json()), fetch('heat.json').then(r=>r.json())]);
 const b = net.bounds;
 const map = new maplibregl.Map({container:'map', fadeDuration:0, bounds:[[b[0],b[1]],[b[2],b[3]]], style:{version:8,
   sources:{net:{type:'geojson',data:net}, heat:{type:'geojson',data:heat}},
   layers:[{id:'bg',type:'background',paint:{'background-color':'#f4f3ef'}},
   {id:'net',type:'line',source:'net',paint:{'line-color':'#999','line-width':['match',['get','class'],'primary',3,1.5]}},
   {id:'heat',type:'line',source:'heat',paint:{'line-color':['step',['get','probability'],'#fecc5c',0.002,'#fd8d3c',
     0.01,'#f03b20',0.05,'#bd0026'],'line-width':5}}]}});
 map.once('idle', ()=>{ window.firstRender = performance.now();
   window.update = (k) => new Promise(res=>{const t=performance.now(); map.getSource('heat').setData(perturb(heat,k));
     map.once('idle', ()=>res(performance.now()-t));});
 });
})();
</script></body></html>"""


def _site(tmp: Path) -> list[str]:
    """The test pages and data in ``tmp``; the libraries found."""
    from app.services.network_geojson import network_layer
    from maxent_irl.roads import RoadNetwork

    net = RoadNetwork.default()
    (tmp / "network.json").write_bytes(network_layer(net).body)
    rng = np.random.default_rng(0)
    states = rng.choice(net.n_states, 400, replace=False)
    probs = rng.dirichlet(np.full(400, 0.3))
    heat = {"type": "FeatureCollection", "features": [net.geojson.segment_feature(int(s), {"probability": float(p)})
                                                      for s, p in zip(states, probs, strict=True)]}
    (tmp / "heat.json").write_text(json.dumps(heat))
    (tmp / "common.js").write_text(COMMON)
    shutil.copytree(ROOT / "app" / "web" / "static" / "vendor" / "leaflet", tmp / "leaflet")
    (tmp / "leaflet-canvas.html").write_text(LEAFLET % {"options": "{preferCanvas: true}"})
    (tmp / "leaflet-svg.html").write_text(LEAFLET % {"options": "{}"})
    libs = ["leaflet-canvas", "leaflet-svg"]
    maplibre = ROOT / "node_modules" / "maplibre-gl" / "dist"
    if maplibre.is_dir():
        shutil.copytree(maplibre, tmp / "maplibre")
        (tmp / "maplibre.html").write_text(MAPLIBRE)
        libs.append("maplibre")
    return libs


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        libs = _site(tmp)
        handler = functools.partial(_Quiet, directory=str(tmp))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            with sync_playwright() as p:
                for run in range(args.runs):
                    for lib in libs:
                        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                        page = browser.new_page(viewport={"width": 1280, "height": 800})
                        page.goto(f"{base}/{lib}.html")
                        page.wait_for_function("window.firstRender !== undefined && window.update !== undefined",
                                               timeout=60_000)
                        first = page.evaluate("window.firstRender")
                        updates = [page.evaluate(f"window.update({k})") for k in range(1, 12)][1:]
                        print(f"run {run + 1} {lib:15s} first render {first:7.0f} ms   heat map update median "
                              f"{statistics.median(updates):6.1f} ms, worst {max(updates):6.1f} ms")
                        browser.close()
        finally:
            server.shutdown()


if __name__ == "__main__":
    main()
