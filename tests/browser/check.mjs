// Drives Debian's chromium (never a downloaded browser) with playwright-core through viewer pages:
// waits for OpenSeadragon to load every tile it wants, screenshots, zooms in, and reports every
// response it saw. Usage: node check.mjs JOB.json  → a JSON report on stdout.
//
// JOB.json: {"chromium": "/usr/bin/chromium", "out": "/tmp/dir",
//            "pages": [{"name": "dz", "url": "http://127.0.0.1:PORT/p.html",
//                       "zooms": [2, 2], "imageZoom": null}]}
// imageZoom, when given, is a last step: viewport.zoomTo(imageToViewportZoom(imageZoom)).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
];

async function settled(page, timeout) {
  // every tile OpenSeadragon wants at this view is loaded, and the last frame is drawn
  await page.waitForFunction(() => {
    const v = window.viewer;
    if (!v || v.world.getItemCount() === 0) return false;
    const item = v.world.getItemAt(0);
    return item.getFullyLoaded() && !v.viewport.getZoom(true).toString().includes("NaN") &&
      Math.abs(v.viewport.getZoom(true) - v.viewport.getZoom(false)) < 1e-9 * v.viewport.getZoom(false);
  }, null, { timeout, polling: 100 });
  await page.waitForTimeout(400);
}

async function stage(page, name, label) {
  const path = join(job.out, `${name}-${label}.png`);
  await page.screenshot({ path });
  const info = await page.evaluate(() => {
    const v = window.viewer;
    const item = v.world.getItemAt(0);
    const r = v.viewport.viewportToViewerElementRectangle(item.getBounds(true));
    const c = v.container.getBoundingClientRect();
    return { rect: [r.x, r.y, r.width, r.height], container: [c.width, c.height],
             imageZoom: v.viewport.viewportToImageZoom(v.viewport.getZoom(true)),
             drawer: v.drawer.getType ? v.drawer.getType() : String(v.drawer.constructor.name) };
  });
  return { label, screenshot: path, seconds: (Date.now() - t0) / 1000, ...info };
}

const report = [];
const t0 = Date.now();
const userDataDir = mkdtempSync(join(tmpdir(), "bigcppn-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: job.chromium, headless: true, args: FLAGS, viewport: { width: 800, height: 600 },
});
try {
  for (const p of job.pages) {
    const page = await context.newPage();
    const entry = { name: p.name, responses: [], failed: [], errors: [], stages: [] };
    page.on("response", (r) => entry.responses.push({ url: r.url(), status: r.status() }));
    page.on("requestfailed", (r) => entry.failed.push({ url: r.url(), error: r.failure()?.errorText }));
    page.on("pageerror", (e) => entry.errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") entry.errors.push(m.text()); });
    try {
      await page.goto(p.url, { waitUntil: "load", timeout: 60000 });
      await settled(page, 90000);
      entry.stages.push(await stage(page, p.name, "home"));
      let i = 0;
      for (const z of p.zooms || []) {
        await page.evaluate((z) => { viewer.viewport.zoomBy(z, null, true); viewer.viewport.applyConstraints(true); }, z);
        await settled(page, 90000);
        entry.stages.push(await stage(page, p.name, `zoom${++i}`));
      }
      if (p.imageZoom) {
        await page.evaluate((z) => { viewer.viewport.zoomTo(viewer.viewport.imageToViewportZoom(z), null, true); }, p.imageZoom);
        await settled(page, 120000);
        entry.stages.push(await stage(page, p.name, "deep"));
      }
    } catch (e) {
      entry.errors.push(`check.mjs: ${e}`);
    }
    await page.close();
    report.push(entry);
  }
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(report, null, 1));
