// Drives Debian's chromium with playwright-core through the `bigcppn explore` page: waits for the seed grid
// and the live view, screenshots, moves a slider, screenshots again, reopens the permalink, and reports
// what it saw. Usage: node explore.mjs JOB.json  → a JSON report on stdout.
//
// JOB.json: {"chromium": "/usr/bin/chromium", "out": "/tmp/dir", "url": "http://127.0.0.1:PORT/",
//            "slider": "weight_scale", "value": 2.5, "screenshot": "/tmp/dir/page.png" (optional)}
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
];
const t0 = Date.now();

async function settled(page, views, timeout = 90000) {
  // the grid is filled, and the live view of the newest config is fully loaded
  await page.waitForFunction((views) => {
    const e = window.explore;
    return e && e.gridLoads > 0 && document.querySelectorAll("#grid .cell").length >= 24 &&
      e.views >= views && e.ready && window.viewer && window.viewer.world.getItemCount() === 1 &&
      window.viewer.world.getItemAt(0).getFullyLoaded() && !document.querySelector("#status").textContent.includes("…") &&
      document.querySelector("#preview").style.opacity !== "1";
  }, views, { timeout, polling: 100 });
  await page.waitForTimeout(500);
}

async function stage(page, label) {
  const path = join(job.out, `explore-${label}.png`);
  await page.screenshot({ path });
  const info = await page.evaluate(() => {
    const v = window.viewer;
    const item = v.world.getItemAt(0);
    const r = v.viewport.viewportToViewerElementRectangle(item.getBounds(true));
    const c = v.container.getBoundingClientRect();
    return { rect: [r.x + c.x, r.y + c.y, r.width, r.height], container: [c.x, c.y, c.width, c.height],
             hash: location.hash, href: location.href, toml: document.querySelector("#toml").textContent,
             cells: document.querySelectorAll("#grid .cell").length, explore: window.explore };
  });
  return { label, screenshot: path, seconds: (Date.now() - t0) / 1000, ...info };
}

const report = { errors: [], responses: [], stages: [] };
const userDataDir = mkdtempSync(join(tmpdir(), "bigcppn-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: job.chromium, headless: true, args: FLAGS, viewport: { width: 1400, height: 800 },
});
function watch(page) {
  page.on("response", (r) => report.responses.push({ url: r.url().slice(0, 200), status: r.status() }));
  page.on("pageerror", (e) => report.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") report.errors.push(m.text()); });
}
try {
  const page = await context.newPage();
  watch(page);
  await page.goto(job.url, { waitUntil: "load", timeout: 60000 });
  await settled(page, 1);
  report.stages.push(await stage(page, "home"));
  if (job.screenshot) await page.screenshot({ path: job.screenshot });
  // move a slider: as a person does, input events while dragging, then change on release
  const before = await page.evaluate(() => window.explore.views);
  await page.evaluate(({ name, value }) => {
    const r = document.querySelector(`input[type=range][name="${name}"]`);
    r.value = String(value);
    r.dispatchEvent(new Event("input", { bubbles: true }));
    r.dispatchEvent(new Event("change", { bubbles: true }));
  }, { name: job.slider, value: job.value });
  const t1 = Date.now();
  await page.waitForFunction((n) => window.explore.previews > n, report.stages[0].explore.previews, { timeout: 30000, polling: 20 });
  report.previewMs = Date.now() - t1;
  await settled(page, before + 1);
  report.sharpMs = Date.now() - t1;
  report.stages.push(await stage(page, "slider"));
  // history: back to the first settings and forward again; a favourite; a print job from the panel
  await page.click("#back");
  await page.waitForFunction(() => document.querySelector("#toml").textContent.includes("weight_scale = 1.0"), null, { timeout: 30000 });
  report.backToml = await page.evaluate(() => document.querySelector("#toml").textContent);
  await page.click("#forward");
  await settled(page, before + 3);
  report.forwardToml = await page.evaluate(() => document.querySelector("#toml").textContent);
  await page.click("#fav");
  await page.waitForFunction(() => document.querySelectorAll("#favs .fav").length === 1, null, { timeout: 30000 });
  report.favourites = await page.evaluate(() => document.querySelectorAll("#favs .fav img")[0].naturalWidth);
  if (job.print) {
    await page.click("#print-box summary");
    await page.selectOption("#print select[name=paper]", "pixels");
    await page.fill("#print input[name=width]", String(job.print.width));
    await page.fill("#print input[name=height]", String(job.print.height));
    await page.fill("#print input[name=bleed]", job.print.bleed || "");
    await page.selectOption("#print select[name=format]", job.print.format);
    await page.dispatchEvent("#print select[name=format]", "change");
    await page.waitForFunction(() => document.querySelector("#print-plan").textContent.includes("px"), null, { timeout: 60000 });
    report.plan = await page.evaluate(() => document.querySelector("#print-plan").textContent);
    await page.click("#start-print");
    await page.waitForSelector(".job.done a", { timeout: 120000 });
    report.download = await page.evaluate(() => document.querySelector(".job.done a").getAttribute("href"));
  }
  // the permalink, opened in a new page
  const link = await page.evaluate(() => document.querySelector("#permalink").href);
  const again = await context.newPage();
  watch(again);
  await again.goto(link, { waitUntil: "load", timeout: 60000 });
  await settled(again, 1);
  report.stages.push(await stage(again, "permalink"));
  await again.close();
  if (job.useView) {
    // zoom and pan the viewer, then make what it shows the config's view: the new picture is what was shown
    const n = await page.evaluate(() => window.explore.views);
    await page.evaluate(() => {
      const v = window.viewer, b = v.world.getItemAt(0).getBounds();
      v.viewport.zoomTo(v.viewport.getHomeZoom() * 2, null, true);
      v.viewport.panTo(new OpenSeadragon.Point(b.width * 0.7, b.height * 0.5), true);
    });
    await page.waitForFunction(() => window.viewer.world.getItemAt(0).getFullyLoaded(), null, { timeout: 60000, polling: 100 });
    await page.waitForTimeout(800);
    report.stages.push(await stage(page, "zoomed"));
    await page.click("#use-view");
    await settled(page, n + 1);
    report.stages.push(await stage(page, "used"));
  }
  await page.close();
} catch (e) {
  report.errors.push(`explore.mjs: ${e}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(report, null, 1));
