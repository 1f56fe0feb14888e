/* routeirl web page: the road network, stored trips, destination predictions, routes and the learned model,
 * drawn with Leaflet (canvas renderer) from the service's public API. Plain script, no build step.
 * window.routeirl exposes the state and timings (first render, posterior updates) for the browser test. */
(function () {
  "use strict";

  const KEY_STORE = "routeirl.apiKey";
  const HEAT = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]; // low -> high (YlOrRd)
  const USE = ["#fde725", "#7ad151", "#22a884", "#2a788e", "#414487", "#440154"]; // low -> high (viridis)
  const ROUTE_COLOURS = ["#c92a2a", "#1971c2", "#2f9e44", "#9c36b5", "#e67700", "#0c8599"];
  const CLASS_WEIGHT = { motorway: 3.5, trunk: 3.5, primary: 3, secondary: 2.5, tertiary: 2, link: 1.5 };
  const HEAT_MAX_FEATURES = 800; // streets drawn in the heat map (the most probable)
  const HEAT_RANGE = 3; // decades of probability below the maximum that get a colour
  const QUERY_MAX_POINTS = 60; // points of a drawn or replayed trip sent to the API (evenly thinned)
  const BIG_NETWORK = 60000; // segments: above, the page loads the streets in view only (GET /v1/network?bbox=)
  const BIG_NETWORK_ZOOM = 14;

  const S = {
    config: null, map: null, layers: {}, panes: {},
    net: { features: [], byState: new Map(), bySegment: new Map() },
    predict: { points: [], seq: 0, trip: null, noHeatmapApi: false },
    route: { origin: null, destination: null, seq: 0 },
    models: [], activeModel: null, job: null, tab: "predict",
    timings: { firstRender: null, networkFeatures: 0, posterior: [] },
    ready: false, errors: [], legends: {},
  };
  window.routeirl = S;

  // --- small helpers -------------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const pct = (p) => (p >= 0.1 ? (100 * p).toFixed(0) : p >= 0.001 ? (100 * p).toFixed(1)
    : p > 0 ? (100 * p).toPrecision(1) : "0") + " %";
  const km = (m) => (m >= 10000 ? (m / 1000).toFixed(0) : (m / 1000).toFixed(1)) + " km";
  const minutes = (s) => (s < 90 ? Math.round(s) + " s" : Math.round(s / 60) + " min");
  const segKey = (seg) => seg[0] + "," + seg[1] + "," + seg[2];
  const lonlat = (ll) => [ll.lng, ll.lat];
  const fmtLonLat = (p) => p[0].toFixed(6) + "," + p[1].toFixed(6);
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  function message(id, text, kind) {
    const m = $(id);
    m.textContent = text || "";
    m.className = "message" + (kind ? " " + kind : "");
  }
  function ramp(colours, t) {
    const i = Math.min(colours.length - 1, Math.max(0, Math.floor(t * colours.length)));
    return colours[i];
  }
  function thin(points, n) {
    if (points.length <= n) return points;
    const out = [];
    for (let i = 0; i < n; i++) out.push(points[Math.round((i * (points.length - 1)) / (n - 1))]);
    return out;
  }

  /** fetch JSON from the API; writes carry the API key; a non-2xx answer throws an Error with code and details. */
  async function api(path, opts) {
    opts = opts || {};
    const headers = {};
    if (opts.write) {
      const key = localStorage.getItem(KEY_STORE);
      if (key) headers["X-API-Key"] = key;
    }
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const r = await fetch(path, { method: opts.method || "GET", headers, body });
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!r.ok) {
      const err = new Error((data && data.message) || r.status + " " + r.statusText);
      err.status = r.status;
      err.code = data && data.code;
      err.details = data && data.details;
      if (r.status === 401) needKey();
      throw err;
    }
    return data;
  }

  function needKey() {
    $("api-key").closest(".key").classList.add("needed");
    $("key-hint").textContent = "This service needs an API key for uploads and training: type it here.";
  }

  // --- the map ---------------------------------------------------------------------------------------------------
  function makeMap() {
    const map = L.map("map", { zoomControl: true, preferCanvas: true, attributionControl: true });
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    map.attributionControl.addAttribution(S.config.attribution);
    // one canvas per pane, so each layer group keeps its place in the stack however often it is redrawn
    const zs = { net: 410, usage: 415, visit: 420, heat: 425, routes: 430, trip: 440 };
    for (const [name, z] of Object.entries(zs)) {
      map.createPane(name).style.zIndex = z;
      S.panes[name] = L.canvas({ pane: name, padding: 0.3 });
    }
    if (S.config.tile_url) {
      S.layers.tiles = L.tileLayer(S.config.tile_url, { maxZoom: 19 }).addTo(map);
    }
    const b = S.config.network.bounds;
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [10, 10] });
    map.on("click", onMapClick);
    S.map = map;
  }

  function geo(pane, style, extra) {
    return L.geoJSON(null, Object.assign({ renderer: S.panes[pane], interactive: false, style }, extra || {}));
  }

  function indexStreets(features) {
    for (const f of features) {
      const p = f.properties;
      p.states.forEach((s, i) => {
        S.net.byState.set(s, f);
        S.net.bySegment.set(segKey(p.segments[i]), f);
      });
    }
  }

  /** The whole network at once; a big one (over BIG_NETWORK segments) piece by piece, the streets in view. */
  async function loadNetwork() {
    S.layers.network = geo("net", (f) => ({
      color: "#8e99a4", weight: CLASS_WEIGHT[f.properties.class] || 1.2, opacity: 0.9,
    })).addTo(S.map);
    if (S.config.network.n_segments > BIG_NETWORK) {
      S.map.on("moveend", loadView);
      await loadView();
      return;
    }
    const net = await api("/v1/network");
    S.timings.networkFetched = performance.now();
    S.net.features = net.features;
    indexStreets(net.features);
    S.layers.network.addData(net);
    S.timings.networkFeatures = net.features.length;
  }

  async function loadView() {
    if (S.map.getZoom() < BIG_NETWORK_ZOOM) {
      S.layers.network.clearLayers();
      message("predict-message", "A big network: zoom in to see its streets.");
      return;
    }
    const b = S.map.getBounds().pad(0.2);
    const net = await api("/v1/network?bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
      .map((x) => x.toFixed(5)).join(","));
    S.timings.networkFetched = performance.now();
    S.net.features = net.features;
    indexStreets(net.features);
    S.layers.network.clearLayers();
    S.layers.network.addData(net);
    S.timings.networkFeatures = net.features.length;
  }

  function makeLayers() {
    S.layers.usage = geo("usage", (f) => ({ color: "#5b8db8", weight: f.properties._w, opacity: f.properties._o }));
    S.layers.heat = geo("heat", (f) => ({ color: f.properties._c, weight: 6, opacity: 0.9, lineCap: "round" }));
    S.layers.visit = geo("visit", (f) => ({ color: f.properties._c, weight: 12, opacity: 0.6, lineCap: "round" }));
    S.layers.routes = L.layerGroup();
    S.layers.trip = L.layerGroup();
    S.layers.pins = L.layerGroup();
    for (const k of ["usage", "heat", "visit", "routes", "trip", "pins"]) S.layers[k].addTo(S.map);
    const overlays = { "Road network": S.layers.network, "Stored trips (streets they drive)": S.layers.usage,
      "Destination heat map": S.layers.heat, "Street usage on a route": S.layers.visit, "Routes": S.layers.routes };
    const base = S.layers.tiles ? { "Map tiles": S.layers.tiles } : {};
    L.control.layers(base, overlays, { collapsed: true }).addTo(S.map);
    S.legend = L.control({ position: "bottomleft" });
    S.legend.onAdd = () => el("div", { class: "legend", id: "legend", style: "display:none" });
    S.legend.addTo(S.map);
  }

  function setLegend(title, colours, lo, hi, note) {
    const box = $("legend");
    box.replaceChildren();
    S.legendShown = title || null;
    if (!title) { // the map's default key: the stored trips
      box.style.display = S.nTrips ? "" : "none";
      box.append(el("div", {}, el("span", { class: "swatch-line" }), " streets the " + (S.nTrips || 0).toLocaleString() +
        " stored trips drive (thicker: more trips)"));
      return;
    }
    box.style.display = "";
    const r = el("div", { class: "ramp" });
    for (const c of colours) r.append(el("span", { style: "background:" + c }));
    box.append(el("div", { class: "title" }, title), r, el("div", { class: "ends" }, el("span", {}, lo), el("span", {}, hi)));
    if (note) box.append(el("div", { class: "note" }, note));
  }

  async function loadUsage() {
    const u = await api("/v1/network/usage");
    const byFeature = new Map();
    u.states.forEach((s, i) => {
      const f = S.net.byState.get(s);
      if (f) byFeature.set(f, (byFeature.get(f) || 0) + u.trips[i]);
    });
    const max = Math.max(1, ...byFeature.values());
    const feats = [];
    for (const [f, c] of byFeature) {
      const t = Math.sqrt(c / max);
      feats.push({ type: "Feature", geometry: f.geometry, properties: { trips: c, _w: 1 + 3 * t, _o: 0.2 + 0.5 * t } });
    }
    S.layers.usage.clearLayers();
    S.layers.usage.addData({ type: "FeatureCollection", features: feats });
    S.nTrips = u.n_trips;
    if (!S.legendShown) setLegend(null); // refresh the stored trips' key
  }

  function onMapClick(e) {
    if (S.tab === "predict") addPredictPoint(lonlat(e.latlng));
    else if (S.tab === "route") setRoutePoint(lonlat(e.latlng));
  }

  // --- destinations ----------------------------------------------------------------------------------------------
  function addPredictPoint(p) {
    if (S.predict.trip) clearReplay();
    S.predict.points.push(p);
    drawPartialTrip();
    updatePosterior(performance.now());
  }

  function drawPartialTrip() {
    S.layers.trip.clearLayers();
    const pts = S.predict.points.map((p) => [p[1], p[0]]);
    if (S.predict.trip) {
      const all = S.predict.trip.coords.map((p) => [p[1], p[0]]);
      L.polyline(all, { renderer: S.panes.trip, color: "#1f3b57", weight: 2, opacity: 0.35, dashArray: "4 6",
        interactive: false }).addTo(S.layers.trip);
      const end = all[all.length - 1];
      L.circleMarker(end, { renderer: S.panes.trip, radius: 7, color: "#1f3b57", weight: 2, fillColor: "#fff",
        fillOpacity: 1 }).bindTooltip("where this trip really ended").addTo(S.layers.trip);
    }
    if (pts.length > 1) {
      L.polyline(pts, { renderer: S.panes.trip, color: "#1f3b57", weight: 4, opacity: 0.9, interactive: false })
        .addTo(S.layers.trip);
    }
    if (!S.predict.trip) {
      pts.forEach((ll, i) => L.circleMarker(ll, { renderer: S.panes.trip, radius: i === pts.length - 1 ? 6 : 4,
        color: "#fff", weight: 2, fillColor: "#1f3b57", fillOpacity: 1, interactive: false }).addTo(S.layers.trip));
    } else if (pts.length) {
      L.circleMarker(pts[pts.length - 1], { renderer: S.panes.trip, radius: 6, color: "#fff", weight: 2,
        fillColor: "#1f3b57", fillOpacity: 1, interactive: false }).addTo(S.layers.trip);
    }
  }

  function clearPrediction() {
    S.layers.heat.clearLayers();
    S.layers.pins.clearLayers();
    $("destination-list").replaceChildren();
    $("predict-summary").textContent = "";
    S.legends.predict = null;
    setLegend(null);
  }

  /** Heat map features: the API's `heatmap` (segment LineStrings with probability) or, from an API without it,
   *  the full candidate distribution joined to the network's streets. */
  function heatFeatures(data) {
    let items = [];
    if (data.heatmap && data.heatmap.features) {
      for (const f of data.heatmap.features) {
        const p = f.properties || {};
        let geom = f.geometry;
        if (!geom && p.state !== undefined && S.net.byState.has(p.state)) geom = S.net.byState.get(p.state).geometry;
        if (geom) items.push({ geometry: geom, p: p.probability });
      }
    } else if (data.distribution) {
      const byFeature = new Map();
      for (const d of data.distribution) {
        const f = S.net.byState.get(d.state) || S.net.bySegment.get(segKey(d.segment));
        if (f) byFeature.set(f, (byFeature.get(f) || 0) + d.probability);
      }
      for (const [f, p] of byFeature) items.push({ geometry: f.geometry, p });
    }
    items.sort((a, b) => b.p - a.p);
    const pmax = items.length ? items[0].p : 0;
    const floor = pmax * Math.pow(10, -HEAT_RANGE);
    items = items.filter((x) => x.p > 0 && x.p >= floor).slice(0, HEAT_MAX_FEATURES).reverse(); // most probable on top
    const features = items.map((x) => ({ type: "Feature", geometry: x.geometry, properties: {
      probability: x.p, _c: ramp(HEAT, (Math.log10(x.p / pmax) + HEAT_RANGE) / HEAT_RANGE) } }));
    return { features, pmax };
  }

  async function updatePosterior(t0) {
    const pts = S.predict.points;
    const seq = ++S.predict.seq;
    if (!pts.length) { clearPrediction(); message("predict-message", ""); return; }
    if (!S.activeModel) { message("predict-message", "No model is active yet: wait for the demo model or train one.", "error"); return; }
    const coords = thin(pts, QUERY_MAX_POINTS).map(fmtLonLat).join(";");
    const full = S.predict.noHeatmapApi ? "&full=true" : "";
    let data;
    try {
      data = await api("/v1/destinations?top=5&heatmap=true" + full + "&coordinates=" + encodeURIComponent(coords));
      if (!data.heatmap && !data.distribution) {
        S.predict.noHeatmapApi = true; // this API has no heat map yet: use the full distribution
        data = await api("/v1/destinations?top=5&full=true&coordinates=" + encodeURIComponent(coords));
      }
    } catch (err) {
      if (seq !== S.predict.seq) return;
      if (!S.predict.trip && (err.code === "point_off_network" || err.code === "map_matching_failed")) {
        S.predict.points.pop();
        drawPartialTrip();
        message("predict-message", err.code === "point_off_network"
          ? "That point is too far from every road: click on a road." : "Those points do not follow the roads: " +
            "click along a road, in driving order.", "error");
      } else {
        message("predict-message", err.message, "error");
      }
      return;
    }
    if (seq !== S.predict.seq) return; // a newer click is on its way
    const heat = heatFeatures(data);
    S.layers.heat.clearLayers();
    S.layers.heat.addData({ type: "FeatureCollection", features: heat.features });
    S.layers.pins.clearLayers();
    const list = $("destination-list");
    list.replaceChildren();
    const top = data.features || [];
    const pmax = Math.max(1e-12, ...top.map((f) => f.properties.probability));
    for (const [i, f] of top.entries()) {
      const p = Object.assign({ rank: i + 1 }, f.properties);
      const ll = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
      const icon = L.divIcon({ className: "dest-pin", html: "<div><span>" + p.rank + "</span></div>",
        iconSize: [26, 26], iconAnchor: [13, 30] });
      // not interactive, so a click on a pin still adds a point; the label is always shown
      const m = L.marker(ll, { icon, interactive: false, keyboard: false })
        .bindTooltip(pct(p.probability), { permanent: true, direction: "right", offset: [12, -16],
          className: "dest-label" })
        .addTo(S.layers.pins);
      const li = el("li", { title: "show on the map" }, el("span", { class: "pin-badge" }, p.rank),
        el("div", { class: "bar" }, el("span", { style: "width:" + (100 * p.probability / pmax).toFixed(1) + "%" })),
        el("span", { class: "num" }, pct(p.probability)));
      li.addEventListener("click", () => S.map.panTo(ll));
      list.append(li);
    }
    const ex = data.expected_destination;
    if (ex && ex.geometry) {
      const c = ex.geometry.coordinates;
      L.circleMarker([c[1], c[0]], { renderer: S.panes.trip, radius: 8, color: "#bd0026", weight: 3, fillColor: "#fff",
        fillOpacity: 0.9, interactive: false }).addTo(S.layers.pins);
    }
    S.legends.predict = ["Probability the trip ends on a street", HEAT,
      "≤ " + pct(heat.pmax / Math.pow(10, HEAT_RANGE)), pct(heat.pmax),
      "pins: the most likely destinations" + (ex && ex.geometry ? "; red ring: the expected destination" : "")];
    setLegend(...S.legends.predict);
    await frames();
    const ms = performance.now() - t0;
    S.timings.posterior.push(ms);
    message("predict-message", "");
    const matched = data.matched ? data.matched.n_segments : null;
    $("predict-summary").textContent = pts.length + " point" + (pts.length > 1 ? "s" : "") + " driven" +
      (matched ? ", matched to " + matched + " segment" + (matched > 1 ? "s" : "") : "") +
      (data.candidates ? "; " + data.candidates + " candidate destinations" : "") + "; model " + data.model_version +
      "; updated in " + Math.round(ms) + " ms.";
    document.body.dataset.posterior = String(S.predict.seq);
  }

  function clearReplay() {
    S.predict.trip = null;
    $("trip-select").value = "";
    $("trip-fraction").disabled = true;
  }

  async function loadTripList() {
    const page = await api("/v1/trajectories?limit=200");
    const sel = $("trip-select");
    sel.replaceChildren(el("option", { value: "" }, "(choose a trip)"));
    for (const t of page.items.slice().reverse()) { // newest first
      sel.append(el("option", { value: t.id }, "#" + t.id + " " + (t.trace_id || "") + " (" + t.n_points + " points)"));
    }
  }

  async function replayTrip(id) {
    if (!id) { clearReplay(); S.predict.points = []; drawPartialTrip(); clearPrediction(); return; }
    const trip = await api("/v1/trajectories/" + id);
    const gps = trip.features.find((f) => f.properties.kind === "gps");
    S.predict.trip = { id, coords: gps.geometry.coordinates };
    $("trip-fraction").disabled = false;
    const b = L.latLngBounds(S.predict.trip.coords.map((p) => [p[1], p[0]]));
    S.map.fitBounds(b.pad(0.6));
    applyReplayFraction();
  }

  function applyReplayFraction() {
    const frac = Number($("trip-fraction").value) / 100;
    $("trip-fraction-out").textContent = Math.round(frac * 100) + " %";
    const c = S.predict.trip.coords;
    S.predict.points = c.slice(0, Math.max(1, Math.round(frac * c.length)));
    drawPartialTrip();
    updatePosterior(performance.now());
  }

  // --- routes ------------------------------------------------------------------------------------------------------
  function routePin(p, label, colour) {
    const m = L.marker([p[1], p[0]], { draggable: true, title: label,
      icon: L.divIcon({ className: "dest-pin", html: '<div style="background:' + colour + '"><span>' + label[0] +
        "</span></div>", iconSize: [26, 26], iconAnchor: [13, 30] }) });
    m.on("dragend", () => {
      const ll = m.getLatLng();
      if (label === "Origin") S.route.origin = [ll.lng, ll.lat]; else S.route.destination = [ll.lng, ll.lat];
      queryRoute(performance.now());
    });
    return m;
  }

  function setRoutePoint(p) {
    if (!S.route.origin || S.route.destination) {
      S.route.origin = p;
      S.route.destination = null;
      S.layers.routes.clearLayers();
      S.layers.visit.clearLayers();
      $("route-list").replaceChildren();
      S.legends.route = null;
      setLegend(null);
      routePin(p, "Origin", "#2f9e44").addTo(S.layers.routes);
      message("route-message", "Now click the destination.");
    } else {
      S.route.destination = p;
      queryRoute(performance.now());
    }
  }

  function routeDuration(f) {
    const p = f.properties;
    if (typeof p.duration_s === "number") return { s: p.duration_s, estimated: false };
    let s = 0;
    for (const seg of p.segments || []) {
      const n = S.net.bySegment.get(segKey(seg));
      if (!n) return null;
      s += n.properties.length_m / (n.properties.speed_kph / 3.6);
    }
    return { s, estimated: true };
  }

  async function queryRoute(t0) {
    const o = S.route.origin, d = S.route.destination;
    if (!o || !d) return;
    if (!S.activeModel) { message("route-message", "No model is active yet.", "error"); return; }
    const seq = ++S.route.seq;
    const q = "origin=" + fmtLonLat(o) + "&destination=" + fmtLonLat(d);
    message("route-message", "Asking the model…");
    let routes, visit;
    try {
      [routes, visit] = await Promise.all([
        api("/v1/routes?alternatives=3&" + q),
        $("show-usage").checked ? api("/v1/visitation?min_probability=0.01&" + q) : Promise.resolve(null),
      ]);
    } catch (err) {
      if (seq === S.route.seq) message("route-message", err.message, "error");
      return;
    }
    if (seq !== S.route.seq) return;
    S.layers.routes.clearLayers();
    S.layers.visit.clearLayers();
    if (visit) {
      const feats = visit.features.slice().reverse().map((f) => ({ type: "Feature", geometry: f.geometry,
        properties: { probability: f.properties.probability, _c: ramp(USE, f.properties.probability) } }));
      S.layers.visit.addData({ type: "FeatureCollection", features: feats });
      S.legends.route = ["Probability a street is used", USE, "1 %", "100 %"];
    } else {
      S.legends.route = null;
    }
    setLegend(...(S.legends.route || [null]));
    const list = $("route-list");
    list.replaceChildren();
    const lines = [];
    routes.features.forEach((f, i) => {
      const colour = ROUTE_COLOURS[i % ROUTE_COLOURS.length];
      const best = f.properties.kind === "most_likely";
      const line = L.geoJSON(f, { renderer: S.panes.routes, style: { color: colour, weight: best ? 6 : 4,
        opacity: 0.95, dashArray: best ? null : "8 6", lineCap: "round" } });
      lines.push(line);
      const p = f.properties;
      const dist = typeof p.distance_m === "number" ? p.distance_m : p.length_m;
      const dur = routeDuration(f);
      const name = best ? "Most likely route" : "Alternative " + i;
      const meta = km(dist) + (dur ? " · " + (dur.estimated ? "≈ " : "") + minutes(dur.s) : "") +
        (p.sample_share !== undefined ? " · drawn in " + pct(p.sample_share) + " of samples" : "");
      const li = el("li", { title: dur && dur.estimated ? "duration at the speed limits" : "" },
        el("span", { class: "swatch", style: "background:" + colour }),
        el("div", {}, el("div", {}, name), el("div", { class: "meta" }, meta)),
        el("b", { class: "num" }, pct(p.probability)));
      li.addEventListener("mouseenter", () => line.setStyle({ weight: 9 }).bringToFront());
      li.addEventListener("mouseleave", () => line.setStyle({ weight: best ? 6 : 4 }));
      list.append(li);
    });
    for (let i = lines.length - 1; i >= 0; i--) lines[i].addTo(S.layers.routes); // most likely on top
    routePin(o, "Origin", "#2f9e44").addTo(S.layers.routes);
    routePin(d, "Destination", "#c92a2a").addTo(S.layers.routes);
    message("route-message", "Probability of each route among all routes between these two points:");
    await frames();
    S.timings.route = performance.now() - t0;
    document.body.dataset.routes = String(seq);
  }

  // --- the model -------------------------------------------------------------------------------------------------
  const PRETTY = {
    km_motorway: "motorway", km_trunk: "trunk road", km_primary: "primary road", km_secondary: "secondary road",
    km_tertiary: "tertiary road", km_residential: "residential street", km_service: "service road",
    km_link: "slip road", km_speed_le30: "limit ≤ 30 km/h", km_speed_50_70: "limit 50-70 km/h",
    km_speed_70_90: "limit 70-90 km/h", km_speed_gt90: "limit > 90 km/h", km_lanes_2: "2 lanes",
    km_lanes_3plus: "3+ lanes", turn_slight_right: "slight right turn", turn_right: "right turn",
    turn_sharp_right: "sharp right turn", turn_slight_left: "slight left turn", turn_left: "left turn",
    turn_sharp_left: "sharp left turn", turn_uturn: "U-turn", segment: "each street segment",
  };

  async function loadModels() {
    const page = await api("/v1/models?limit=50");
    S.models = page.items;
    const active = S.models.find((m) => m.active) || null;
    const changed = (active && active.id) !== (S.activeModel && S.activeModel.id);
    S.activeModel = active;
    const sel = $("model-select");
    const keep = sel.value;
    sel.replaceChildren();
    for (const m of S.models) {
      const n = m.metrics && m.metrics.train ? m.metrics.train.n_trips : "?";
      sel.append(el("option", { value: m.id }, "model " + m.id + (m.active ? " (active)" : "") + " · " + n +
        " trips · " + (m.created_at || "").slice(0, 16).replace("T", " ")));
    }
    if (!S.models.length) sel.append(el("option", { value: "" }, "no model yet"));
    sel.value = keep && S.models.some((m) => String(m.id) === keep) && !changed ? keep : active ? String(active.id) : "";
    showModel(S.models.find((m) => String(m.id) === sel.value) || null);
    return changed;
  }

  function showModel(m) {
    const chart = $("cost-chart");
    chart.replaceChildren();
    $("metrics").replaceChildren();
    $("model-activate").disabled = !m || m.active;
    if (!m) { $("model-summary").textContent = "No model yet."; return; }
    const mt = m.metrics || {};
    $("model-summary").textContent = "Trained " + (m.created_at || "").slice(0, 19).replace("T", " ") + " on " +
      ((mt.train && mt.train.n_trips) || "?") + " trips" + (mt.simulator_theta ? " (the demo: simulated drivers)" : "") +
      (m.active ? "; this is the model answering queries." : ".");
    chart.append(costChart(m.features || []));
    const rows = [];
    const h = mt.heldout || {}, t = mt.train || {};
    const add = (label, v, f) => { if (v !== undefined && v !== null) rows.push([label, f ? f(v) : v]); };
    add("training trips", t.n_trips);
    add("held-out trips", h.n_trips);
    add("held-out log-likelihood per trip", h.mean_log_likelihood_per_trip, (v) => v.toFixed(2));
    add("held-out log-likelihood per segment", h.mean_log_likelihood_per_segment, (v) => v.toFixed(3));
    add("held-out trips whose most likely route is exactly the driven one", h.most_likely_route_exact, pct);
    add("mean overlap of most likely and driven route", h.most_likely_route_overlap, pct);
    add("optimizer iterations", mt.n_iter, (v) => v + (mt.converged === false ? " (not converged)" : ""));
    add("fit time", mt.fit_seconds, (v) => v.toFixed(1) + " s");
    add("L2 penalty", mt.regularization);
    if (mt.trips) add("trips set aside", mt.trips.set_aside);
    const table = $("metrics");
    for (const [k, v] of rows) table.append(el("tr", {}, el("td", {}, k), el("td", {}, v)));
  }

  function costChart(features) {
    const NS = "http://www.w3.org/2000/svg";
    const mk = (tag, attrs, text) => {
      const e = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const groups = [["per km", features.filter((f) => f.name.startsWith("km_"))],
      ["per turn / segment", features.filter((f) => !f.name.startsWith("km_"))]];
    const W = 360, L0 = 128, R0 = 300, ROW = 17;
    const se = (f) => (f.weight && f.standard_error !== null && Number.isFinite(f.standard_error)
      ? Math.abs(f.seconds / f.weight) * f.standard_error : 0);
    const svg = mk("svg", { viewBox: "0 0 " + W + " 10", role: "img", "aria-label": "learned costs in seconds" });
    const defs = mk("defs", {});
    const pat = mk("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)" });
    pat.append(mk("rect", { width: 3, height: 6, fill: "#d5dbe1" }));
    defs.append(pat);
    svg.append(defs);
    let y = 4;
    for (const [title, list] of groups) {
      if (!list.length) continue;
      const learned = list.filter((f) => f.status === "learned" && f.seconds !== null);
      let span = Math.max(1, ...learned.map((f) => Math.abs(f.seconds)));
      span = Math.max(span, ...learned.map((f) => Math.min(Math.abs(f.seconds) + 2 * se(f), 2 * span)));
      const zero = L0 + (R0 - L0) / 2, scale = (R0 - L0) / 2 / span;
      svg.append(mk("text", { x: 0, y: y + 11, "font-weight": 600 }, "seconds " + title));
      y += ROW;
      svg.append(mk("line", { x1: zero, x2: zero, y1: y, y2: y + list.length * ROW, stroke: "#9aa8b6" }));
      for (const f of list) {
        const g = mk("g", { class: f.status === "learned" ? "learned" : "absent", "data-feature": f.name,
          "data-status": f.status });
        const title = mk("title", {}, f.name + ": " + (f.status === "learned" && f.seconds !== null
          ? f.seconds.toFixed(1) + " s" + (se(f) ? " ± " + se(f).toFixed(1) : "") : f.status === "absent"
            ? "absent: no training trip drove it, not learned" : "not trained: left out by the job's options"));
        g.append(title);
        g.append(mk("text", { x: L0 - 4, y: y + 12, "text-anchor": "end" }, PRETTY[f.name] || f.name));
        if (f.status === "learned" && f.seconds !== null) {
          const x = zero + Math.min(0, f.seconds) * scale, w = Math.max(1, Math.abs(f.seconds) * scale);
          g.append(mk("rect", { x, y: y + 3, width: w, height: ROW - 6, fill: f.seconds >= 0 ? "#d9480f" : "#2f9e44" }));
          const e = se(f);
          if (e) {
            const a = zero + Math.max(-span, f.seconds - 2 * e) * scale, b = zero + Math.min(span, f.seconds + 2 * e) * scale;
            g.append(mk("line", { x1: a, x2: b, y1: y + ROW / 2, y2: y + ROW / 2, stroke: "#1d2733", "stroke-width": 1 }));
          }
          g.append(mk("text", { x: W, y: y + 12, "text-anchor": "end" }, (f.seconds >= 0 ? "+" : "") +
            (Math.abs(f.seconds) >= 100 ? f.seconds.toFixed(0) : f.seconds.toFixed(1)) + " s"));
        } else {
          g.append(mk("rect", { x: L0, y: y + 3, width: R0 - L0, height: ROW - 6, fill: "url(#hatch)" }));
          g.append(mk("text", { x: W, y: y + 12, "text-anchor": "end" }, f.status === "absent" ? "absent" : "not trained"));
        }
        svg.append(g);
        y += ROW;
      }
      y += 8;
    }
    svg.setAttribute("viewBox", "0 0 " + W + " " + y);
    return svg;
  }

  async function activateSelected() {
    const id = $("model-select").value;
    if (!id) return;
    try {
      await api("/v1/models/" + id + "/activate", { method: "POST", write: true });
      message("model-message", "Model " + id + " is now active.", "ok");
    } catch (err) {
      message("model-message", err.message, "error");
      return;
    }
    await refreshStatus();
  }

  // --- upload and training ---------------------------------------------------------------------------------------
  async function uploadFiles(files) {
    if (!files || !files.length) return;
    const form = new FormData();
    for (const f of files) form.append("file", f, f.name);
    message("upload-message", "Uploading " + files.length + " file" + (files.length > 1 ? "s" : "") + "…");
    let out;
    try {
      out = await api("/v1/trajectories", { method: "POST", body: form, write: true });
    } catch (err) {
      message("upload-message", "Upload failed: " + err.message, "error");
      return;
    }
    const reasons = {};
    for (const r of out.rejected) reasons[r.reason] = (reasons[r.reason] || 0) + 1;
    const why = Object.entries(reasons).map(([k, n]) => k.replace(/_/g, " ") + (n > 1 ? " ×" + n : "")).join(", ");
    message("upload-message", "Stored " + out.accepted.length + " trip" + (out.accepted.length === 1 ? "" : "s") +
      (out.rejected.length ? "; rejected " + out.rejected.length + " (" + why + ")" : "") +
      ". Train a model to learn from them.", out.accepted.length ? "ok" : "error");
    S.lastUpload = out;
    await Promise.all([loadUsage(), loadTripList()]);
    updateStatusLine();
  }

  async function startTraining() {
    $("train").disabled = true;
    setProgress(0, "queued");
    let job;
    try {
      job = await api("/v1/models", { method: "POST", json: {}, write: true });
    } catch (err) {
      message("train-message", "Cannot train: " + err.message, "error");
      $("train").disabled = false;
      return;
    }
    message("train-message", "Training job " + job.id + " started.");
    watchJob(job.id);
  }

  function jobFraction(job) {
    if (job.status === "succeeded") return 1;
    if (job.status === "queued") return 0;
    const p = job.progress || {};
    if (typeof p.fraction === "number") return p.fraction;
    // a service without progress.fraction: estimate it from the stage and the iteration count
    const maxIter = (job.options && job.options.max_iter) || (S.config && S.config.max_iter) || 200;
    if (p.stage === "fitting") return 0.1 + 0.75 * Math.min(1, (p.iteration || 0) / maxIter);
    return { "standard errors": 0.87, evaluating: 0.95, done: 1 }[p.stage] || 0.05;
  }

  function setProgress(frac, label) {
    const v = Math.round(100 * Math.max(0, Math.min(1, frac)));
    $("progress-fill").style.width = v + "%";
    $("progress").setAttribute("aria-valuenow", String(v));
    $("progress-label").textContent = v + " %" + (label ? " · " + label : "");
  }

  async function watchJob(id) {
    S.job = id;
    let shown = 0;
    for (;;) {
      let job;
      try {
        job = await api("/v1/jobs/" + id);
      } catch (err) {
        message("train-message", err.message, "error");
        break;
      }
      const p = job.progress || {};
      const label = job.status === "running" ? (p.stage || "running") + (p.iteration ? ", iteration " + p.iteration : "")
        : job.status;
      shown = Math.max(shown, jobFraction(job)); // never backwards
      setProgress(shown, label);
      if (!["queued", "running"].includes(job.status)) {
        if (job.status === "succeeded") {
          message("train-message", "Model " + job.model_id + " trained" + (p.elapsed_s ? " in " + p.elapsed_s.toFixed(1) +
            " s" : "") + (job.options && job.options.activate === false ? "." : " and now answers the queries."), "ok");
        } else {
          message("train-message", "Training " + job.status + (job.error ? ": " + job.error : ""), "error");
        }
        break;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    S.job = null;
    $("train").disabled = false;
    await refreshStatus();
  }

  // --- status ----------------------------------------------------------------------------------------------------
  function updateStatusLine() {
    const n = S.config.network;
    const st = $("status");
    const parts = [n.name + " · " + S.net.features.length.toLocaleString() + " streets"];
    if (S.nTrips !== undefined) parts.push(S.nTrips.toLocaleString() + " stored trips");
    parts.push(S.activeModel ? "model " + S.activeModel.id + " active" : "no model yet");
    st.textContent = parts.join(" · ");
    st.classList.toggle("bad", !S.activeModel);
  }

  async function refreshStatus() {
    const changed = await loadModels();
    updateStatusLine();
    if (!S.activeModel) {
      // e.g. the demo model is training: follow its job, then try again
      const jobs = await api("/v1/jobs?limit=5");
      const running = jobs.items.find((j) => j.status === "running" || j.status === "queued");
      if (running && S.job === null) watchJob(running.id);
      else if (!running) setTimeout(refreshStatus, 2000);
      message("predict-message", running ? "The model is training (job " + running.id + "); predictions start when " +
        "it is done." : "No model yet: upload trips and train one (Upload & train).", running ? "" : "error");
    } else if (changed) {
      message("predict-message", "");
      if (S.predict.points.length) updatePosterior(performance.now());
      if (S.route.destination) queryRoute(performance.now());
    }
  }

  // --- wiring ----------------------------------------------------------------------------------------------------
  function selectTab(name) {
    S.tab = name;
    for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
    for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + name;
    S.map.getContainer().style.cursor = name === "predict" || name === "route" ? "crosshair" : "";
    // each task shows its own layers: a destination heat map under a route would only confuse
    const show = (layers, on) => layers.forEach((l) => (on ? S.map.addLayer(l) : S.map.removeLayer(l)));
    if (name === "predict" || name === "route") {
      show([S.layers.heat, S.layers.pins, S.layers.trip], name === "predict");
      show([S.layers.visit, S.layers.routes], name === "route");
      setLegend(...(S.legends[name] || [null]));
    }
    if (name === "predict" && S.predict.points.length) updatePosterior(performance.now());
    if (name === "route" && S.route.destination) queryRoute(performance.now());
  }

  function wire() {
    for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => selectTab(b.dataset.tab));
    $("predict-undo").addEventListener("click", () => {
      if (S.predict.trip) clearReplay();
      S.predict.points.pop();
      drawPartialTrip();
      updatePosterior(performance.now());
    });
    $("predict-clear").addEventListener("click", () => {
      clearReplay();
      S.predict.points = [];
      drawPartialTrip();
      updatePosterior(performance.now());
    });
    $("trip-select").addEventListener("change", (e) => replayTrip(e.target.value).catch((err) =>
      message("predict-message", err.message, "error")));
    $("trip-fraction").addEventListener("input", () => { if (S.predict.trip) applyReplayFraction(); });
    $("show-usage").addEventListener("change", () => queryRoute(performance.now()));
    $("model-select").addEventListener("change", (e) => showModel(S.models.find((m) => String(m.id) === e.target.value)));
    $("model-activate").addEventListener("click", activateSelected);
    $("train").addEventListener("click", startTraining);
    const key = $("api-key");
    key.value = localStorage.getItem(KEY_STORE) || "";
    key.addEventListener("change", () => {
      if (key.value) localStorage.setItem(KEY_STORE, key.value); else localStorage.removeItem(KEY_STORE);
      key.closest(".key").classList.remove("needed");
    });
    if (S.config.api_key_required && !key.value) needKey();
    const zone = $("drop-zone");
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      uploadFiles(e.dataTransfer.files);
    });
    $("file-input").addEventListener("change", (e) => { uploadFiles(e.target.files); e.target.value = ""; });
    // dropping a file anywhere else must not navigate away from the page
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
  }

  async function main() {
    try {
      S.config = await api("/web/config.json");
      makeMap();
      await loadNetwork();
      makeLayers();
      wire();
      await frames();
      S.timings.firstRender = performance.now(); // since navigation start
      S.ready = true;
      document.body.dataset.ready = "1";
      await Promise.all([refreshStatus(), loadUsage().then(updateStatusLine), loadTripList()]);
      document.body.dataset.loaded = "1";
    } catch (err) {
      S.errors.push(String(err));
      $("status").textContent = "error: " + err.message;
      $("status").classList.add("bad");
      throw err;
    }
  }

  main();
})();
