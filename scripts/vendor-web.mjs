// Copy the browser libraries from node_modules into app/web/static/vendor (`npm ci && npm run vendor`).
// The copies are committed: the service serves them itself and loads nothing from a CDN at run time.
// A trailing sourceMappingURL comment is dropped (the .map files are not vendored).
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "app", "web", "static", "vendor");
const files = {
  leaflet: ["dist/leaflet.js", "dist/leaflet.css", "dist/images/layers.png", "dist/images/layers-2x.png",
            "dist/images/marker-icon.png", "dist/images/marker-icon-2x.png", "dist/images/marker-shadow.png",
            "LICENSE"],
  "swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE"],
  redoc: ["bundles/redoc.standalone.js", "bundles/redoc.standalone.js.LICENSE.txt", "LICENSE"],
};
const mapComment = /\n?\/[/*][#@] sourceMappingURL=[^\n]*\s*$/;
// Addresses a library would fetch at run time, and what replaces them: the page must load nothing from outside.
const offline = {
  // ReDoc's "powered by" logo in the side bar: an empty picture instead
  "https://cdn.redoc.ly/redoc/logo-mini.svg": "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E",
};

rmSync(out, { recursive: true, force: true });
const versions = {};
for (const [pkg, list] of Object.entries(files)) {
  const src = join(root, "node_modules", pkg);
  versions[pkg] = JSON.parse(readFileSync(join(src, "package.json"), "utf8")).version;
  for (const rel of list) {
    const dst = join(out, pkg, rel.replace(/^(dist|bundles)\//, ""));
    mkdirSync(dirname(dst), { recursive: true });
    if (/\.(js|css)$/.test(rel)) {
      let text = readFileSync(join(src, rel), "utf8").replace(mapComment, "\n");
      for (const [url, local] of Object.entries(offline)) text = text.split(url).join(local);
      writeFileSync(dst, text);
    } else {
      copyFileSync(join(src, rel), dst);
    }
  }
}
writeFileSync(join(out, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`vendored into ${out}:`, versions);
