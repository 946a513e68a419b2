// The playground in Debian's Chromium, as a user drives it: every request stays on the origin,
// Monaco is typed into and run by keyboard, the views answer, runaway scripts are stopped with
// the text intact, share links round-trip. Screenshots of each view are kept in test-results/.
import { expect, test, type BrowserContext, type Page } from "@playwright/test";
import * as LZ from "lz-string";

// lz-string is CommonJS: under Node's ESM loader its functions hang off the default export
const lz = ((LZ as unknown as { default?: typeof LZ }).default ?? LZ) as typeof LZ;

const foreign: string[] = [];

async function guard(context: BrowserContext) {
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("http://127.0.0.1:4173/") || url.startsWith("blob:") || url.startsWith("data:")) return route.continue();
    foreign.push(url);
    return route.abort();
  });
}

async function open(page: Page, hash = "") {
  await page.goto("/" + hash);
  await page.waitForSelector(".monaco-editor .view-lines", { timeout: 30_000 });
}

/** Replace the editor's text (insertText: typing would trigger auto-indent and auto-close). */
async function typeScript(page: Page, code: string) {
  await page.locator(".monaco-editor").first().click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(code);
}

async function runByKeyboard(page: Page) {
  await page.locator(".monaco-editor").first().click();
  await page.keyboard.press("ControlOrMeta+Enter");
  await expect(page.getByTestId("status")).not.toHaveAttribute("data-status", "running", { timeout: 20_000 });
}

const MAPPED = `const iommufd = open("/dev/iommu");
const { out_ioas_id: ioas } = ioctl(iommufd, IOMMU_IOAS_ALLOC, {});
const buf = mmap(0x4000);
ioctl(iommufd, IOMMU_IOAS_MAP, {
  flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
  ioas_id: ioas, user_va: buf, length: 0x4000, iova: 0x40201000,
});
// vfio1 has no ATS: its second read is translated by the IOMMU again (an IOTLB hit); vfio0 would
// serve it from its own device-TLB
const vfio = open("/dev/vfio/devices/vfio1");
ioctl(vfio, VFIO_DEVICE_BIND_IOMMUFD, { iommufd });
ioctl(vfio, VFIO_DEVICE_ATTACH_IOMMUFD_PT, { pt_id: ioas });
const dev = hw.device(vfio);
await dev.read(0x40201000, 8);
await dev.read(0x40201010, 8);
`;

test.beforeEach(async ({ context }) => {
  foreign.length = 0;
  await context.addInitScript(() => localStorage.clear());
  await guard(context);
});

test.afterEach(() => {
  expect(foreign, "requests outside the origin").toEqual([]);
});

test("runs a typed script with Ctrl+Enter, and the views answer", async ({ page }) => {
  await open(page);
  await typeScript(page, MAPPED);
  await runByKeyboard(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "done");
  // walk view: 0x40201000 → PML4 0, PDPT 1, PD 1, PT 1
  const idx = (level: number) => Math.floor(0x40201000 / 2 ** (12 + 9 * (level - 1))) % 512;
  const walk = page.locator("[data-view=walk]");
  await expect(walk).toHaveAttribute("data-level-index", `4:${idx(4)},3:${idx(3)},2:${idx(2)},1:${idx(1)}`);
  await walk.screenshot({ path: "test-results/view-walk.png" });
  // IOTLB: the second read of the page hits
  await page.getByRole("tab", { name: /IOTLB/ }).click();
  const iotlb = page.locator("[data-view=iotlb]");
  await expect(iotlb).toHaveAttribute("data-hits", /^[1-9]/);
  await iotlb.screenshot({ path: "test-results/view-iotlb.png" });
  await page.getByRole("tab", { name: "Objects" }).click();
  await page.locator("[data-view=objects]").screenshot({ path: "test-results/view-objects.png" });
  await page.getByRole("tab", { name: "Address space" }).click();
  await page.locator("[data-view=addrspace]").screenshot({ path: "test-results/view-addrspace.png" });
  await page.locator("[data-view=log]").screenshot({ path: "test-results/view-log.png" });
  await page.locator("[data-view=timeline]").screenshot({ path: "test-results/view-timeline.png" });
  await page.screenshot({ path: "test-results/playground.png" });
});

test("the log shows the errno and reason of a bad call, and the editor marks its line", async ({ page }) => {
  await open(page);
  await typeScript(page, `const fd = open("/dev/iommu");\n\nioctl(fd, IOMMU_IOAS_ALLOC, { flags: 1 });\n`);
  await runByKeyboard(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "error");
  const log = page.locator("[data-view=log]");
  await expect(log).toContainText("= -1 EOPNOTSUPP");
  await expect(log).toContainText("iommufd_ioas_alloc_ioctl: flags must be 0");
  await expect(page.locator(".monaco-editor .squiggly-error").first()).toBeVisible();
});

test("a runaway script is stopped, the text survives, the next run works", async ({ page }) => {
  await open(page);
  await page.getByLabel("Run time budget").selectOption("1000");
  const runaway = "let n = 0;\nwhile (true) { n++; }\n";
  await typeScript(page, runaway);
  await runByKeyboard(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "timeout");
  await expect(page.locator("[data-view=log]")).toContainText("Stopped after 1.0 s");
  await expect(page.locator(".monaco-editor .view-lines")).toContainText("while (true) { n++; }");
  await typeScript(page, `console.log("alive");\n`);
  await runByKeyboard(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "done");
  await expect(page.locator("[data-view=log]")).toContainText("alive");
});

test("a share link round-trips the script", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await open(page);
  const code = `// shared ✓\nconsole.log(0x${(0xc0ffee).toString(16)});\n`;
  await typeScript(page, code);
  await page.getByTestId("share").click();
  await expect.poll(() => page.evaluate(() => location.hash)).toMatch(/^#v1\//);
  const url = page.url();
  const other = await context.newPage();
  await other.addInitScript(() => localStorage.clear());
  await other.goto(url);
  await other.waitForSelector(".monaco-editor .view-lines");
  await expect(other.locator(".monaco-editor .view-lines")).toContainText("// shared ✓");
  await runByKeyboard(other);
  await expect(other.locator("[data-view=log]")).toContainText("12648430");
});

test("the editor offers the script API through IntelliSense", async ({ page }) => {
  await open(page);
  await typeScript(page, "IOMMU_IOAS_AL");
  await page.keyboard.press("Control+Space");
  await expect(page.locator(".suggest-widget")).toContainText("IOMMU_IOAS_ALLOC");
});

test("an example from the menu runs, and clicking a log line rewinds every view to that moment", async ({ page }) => {
  await open(page);
  await page.getByRole("button", { name: /Examples/ }).click();
  await page.getByRole("menuitem", { name: /Destroy ordering/ }).click();
  await expect(page.locator(".monaco-editor .view-lines")).toContainText("tryDestroy");
  await runByKeyboard(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "done");
  // live: everything was torn down at the end
  await page.getByRole("tab", { name: "Objects" }).click();
  const objects = page.locator("[data-view=objects]");
  await expect(objects).toHaveAttribute("data-objects", "");
  // the first failed IOMMU_DESTROY: the IOAS is busy, held by the HWPT
  const row = page.locator("[data-view=log] [role=option]", { hasText: "IOMMU_DESTROY" }).first();
  await row.click();
  await expect(objects).toHaveAttribute("data-destroy-target", /IOAS/);
  await expect(objects).toHaveAttribute("data-destroy-holders", /HWPT_PAGING/);
  await expect(page.locator("[data-view=timeline]")).not.toHaveAttribute("data-cursor", "live");
  await page.getByRole("button", { name: /Live/ }).click();
  await expect(page.locator("[data-view=timeline]")).toHaveAttribute("data-cursor", "live");
});

test("the page-fault example runs in the worker: DMAs wait while the script serves the fault queue", async ({ page }) => {
  await open(page);
  await page.getByRole("button", { name: /Examples/ }).click();
  await page.getByRole("menuitem", { name: /fault handler/ }).click();
  await expect(page.locator(".monaco-editor .view-lines")).toContainText("IOMMU_FAULT_QUEUE_ALLOC");
  await runByKeyboard(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "done");
  await expect(page.locator("[data-view=log]")).toContainText("DMA to 0x80000000 failed: response code 1");
});

test("work survives a reload, and a shared link asks before replacing it", async ({ browser }) => {
  const context = await browser.newContext();
  await guard(context);
  const page = await context.newPage();
  await open(page);
  await typeScript(page, "// my unsaved experiment\nconsole.log(1);\n");
  await page.waitForTimeout(400); // saving is debounced while typing
  await page.reload();
  await page.waitForSelector(".monaco-editor .view-lines");
  await expect(page.locator(".monaco-editor .view-lines")).toContainText("my unsaved experiment");
  // a link with another script: the dialog asks, and "Keep my script" keeps it
  const hash = "#v1/" + lz.compressToEncodedURIComponent(JSON.stringify({ c: "// from a link\n", m: "vtd", k: {}, t: "link" }));
  await page.goto("/" + hash);
  await page.waitForSelector(".monaco-editor .view-lines");
  await expect(page.getByRole("dialog", { name: "Open the shared script?" })).toBeVisible();
  await page.getByRole("button", { name: "Keep my script" }).click();
  await expect(page.locator(".monaco-editor .view-lines")).toContainText("my unsaved experiment");
  await page.reload();
  await page.getByRole("button", { name: "Open the link" }).click();
  await expect(page.locator(".monaco-editor .view-lines")).toContainText("from a link");
  await context.close();
});

test("every action is reachable from the keyboard: shortcuts dialog, theme, examples", async ({ page }) => {
  await open(page);
  await page.locator("body").click({ position: { x: 5, y: 880 } });
  await page.keyboard.press("?");
  await expect(page.getByRole("dialog", { name: "Keyboard shortcuts" })).toBeVisible();
  await expect(page.getByRole("dialog", { name: "Keyboard shortcuts" })).toContainText("Ctrl+M");
  await page.keyboard.press("Escape");
  const before = await page.evaluate(() => document.documentElement.dataset.theme);
  await page.keyboard.press("Alt+t");
  await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).not.toBe(before);
  await page.screenshot({ path: "test-results/playground-other-theme.png" });
  await page.keyboard.press("Alt+e");
  await expect(page.getByRole("menu", { name: "Examples" })).toBeVisible();
  await page.keyboard.press("Escape");
  await expect(page.getByRole("menu", { name: "Examples" })).toBeHidden();
});

test("Ctrl+M frees Tab from the editor, and the choice is remembered", async ({ browser }) => {
  const context = await browser.newContext();
  await guard(context);
  const page = await context.newPage();
  await open(page);
  await page.locator(".monaco-editor").first().click();
  await page.keyboard.press("Control+m");
  await page.keyboard.press("Tab");
  await expect.poll(() => page.evaluate(() => !!document.activeElement?.closest(".monaco-editor"))).toBe(false);
  await page.reload();
  await page.waitForSelector(".monaco-editor .view-lines");
  await page.locator(".monaco-editor").first().click();
  await page.keyboard.press("Tab");
  await expect.poll(() => page.evaluate(() => !!document.activeElement?.closest(".monaco-editor"))).toBe(false);
  await context.close();
});

// ---- nested translation, stale hits, page requests, faults (the views of issue 4 and 5) ----

/** Open a script and machine knobs as a share link would (the knobs have no toolbar control). */
async function openShared(page: Page, code: string, knobs: Record<string, number>, title: string) {
  await open(page, "#v1/" + lz.compressToEncodedURIComponent(JSON.stringify({ c: code, m: "vtd", k: knobs, t: title })));
  await expect(page.locator(".monaco-editor .view-lines")).toContainText(code.split("\n")[0].slice(0, 30));
}

async function runExample(page: Page, name: RegExp) {
  await page.getByRole("button", { name: /Examples/ }).click();
  await page.getByRole("menuitem", { name }).click();
  await runByKeyboard(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "done");
}

/** Click the log line of the n-th DMA at `iova` (its completion or fault): every view goes to that moment. */
async function selectDma(page: Page, iova: string, n = 0) {
  await logLine(page, new RegExp(`^dma .*iova=${iova}\\b`)).nth(n).click();
}

/** Log rows whose text (not the gutter or badge) matches. */
function logLine(page: Page, text: RegExp) {
  return page.locator("[data-view=log] [role=option]").filter({ has: page.locator(".text", { hasText: text }) });
}

/** The 2D order of a cold 4 × 4 nested walk: for each guest level its table through the 4 host levels, then its entry; then the final GPA. */
const COLD_ORDER = [4, 3, 2, 1].flatMap((f) => [4, 3, 2, 1].map((h) => `s2:${f}:${h}`).concat(`s1:${f}`)).concat([4, 3, 2, 1].map((h) => `s2:0:${h}`)).join(",");

test("the nested example draws its first walk as the 24-read 2D grid", async ({ page }) => {
  const { EXAMPLES } = await import("../../app/examples/index.ts");
  const nested = EXAMPLES.find((e) => e.id === "nested")!.code;
  // no paging-structure caches: nothing cuts the first walk short
  await openShared(page, nested, { pwcEntries: 0, fsPwcEntries: 0 }, "nested, cold");
  await runByKeyboard(page);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "done");
  await selectDma(page, "0x40000000");
  const walk = page.locator("[data-view=walk]");
  await expect(walk).toHaveAttribute("data-nested", "true");
  await expect(walk).toHaveAttribute("data-reads", "24");
  await expect(walk).toHaveAttribute("data-grid", COLD_ORDER);
  await expect(walk.locator("g.cell")).toHaveCount(24);
  await expect(walk.locator('g.cell[data-order="24"]')).toHaveAttribute("data-row", "0");
  await walk.screenshot({ path: "test-results/view-walk-nested.png" });
});

test("with the caches on, the nested walk skips what they hold, and the faults are recorded", async ({ page }) => {
  await open(page);
  await runExample(page, /nested/);
  await selectDma(page, "0x40000000");
  const walk = page.locator("[data-view=walk]");
  await expect(walk).toHaveAttribute("data-nested", "true");
  await expect(walk).toHaveAttribute("data-skipped", /:pwc/);
  expect(Number(await walk.getAttribute("data-reads"))).toBeLessThan(24);
  await expect(walk.locator('g.cell[data-status="pwc"]').first()).toContainText("skipped");
  await walk.screenshot({ path: "test-results/view-walk-nested-cached.png" });
  // the write through the guest's read-only mapping faults in stage 1: reason 0x85 on the guest PT entry
  await selectDma(page, "0x40002000");
  await expect(walk).toHaveAttribute("data-fault-reason", "0x85");
  await expect(walk.locator('g.cell[data-status="fault"]')).toHaveAttribute("data-col", "0");
  await page.getByRole("tab", { name: "Faults" }).click();
  const faults = page.locator("[data-view=faults]");
  await expect(faults).toHaveAttribute("data-records", "1");
  await expect(faults).toHaveAttribute("data-reasons", "0:0x85");
  await page.getByRole("button", { name: /Live/ }).click();
  await expect(faults).toHaveAttribute("data-dropped", "1");
  await faults.screenshot({ path: "test-results/view-faults.png" });
  await page.getByRole("tab", { name: "Objects" }).click();
  const objects = page.locator("[data-view=objects]");
  await expect(objects).toHaveAttribute("data-edges", /HWPT_NESTED 4>HWPT_PAGING 3:parent/);
  await objects.screenshot({ path: "test-results/view-objects-nested.png" });
});

test("the forgotten invalidation shows the stale IOTLB entry", async ({ page }) => {
  await open(page);
  await runExample(page, /forgotten invalidation/);
  await page.getByRole("tab", { name: /IOTLB/ }).click();
  const iotlb = page.locator("[data-view=iotlb]");
  await expect(iotlb).toHaveAttribute("data-stale", "1");
  // the second read (served from the stale entry): the entry is marked, in words
  await selectDma(page, "0x40000000", 1);
  await expect(iotlb).toHaveAttribute("data-stale-entry", /^iotlb:\d+\/\d+$/);
  await expect(iotlb.locator('g.entry[data-stale="true"]')).toContainText("⚠ STALE");
  await expect(iotlb.locator('g.entry[data-nested="true"]').first()).toBeVisible();
  await expect(iotlb).toContainText(/STALE: IOTLB .* cached 0x[0-9a-f]+, memory now 0x[0-9a-f]+/);
  await iotlb.screenshot({ path: "test-results/view-iotlb-stale.png" });
});

test("the fault-handler example shows the page request messages, the queue and the device-TLB", async ({ page }) => {
  await open(page);
  await runExample(page, /fault handler/);
  await page.getByRole("tab", { name: "Page requests" }).click();
  const prq = page.locator("[data-view=prq]");
  await expect(prq).toHaveAttribute("data-groups", "3");
  await expect(prq).toHaveAttribute("data-kinds", /ats\.request,ats\.completion,pri\.request/);
  await expect(prq).toHaveAttribute("data-kinds", /prq\.request.*prq\.handle.*iopf\.group.*fault\.read.*fault\.response.*iopf\.response.*prq\.response.*pri\.response/);
  expect(Number(await prq.getAttribute("data-messages"))).toBeGreaterThan(20);
  await expect(prq).toHaveAttribute("data-ring-head", "3");
  await expect(prq).toHaveAttribute("data-ring-tail", "3");
  await expect(prq).toHaveAttribute("data-overflow", "false");
  await expect(prq).toHaveAttribute("data-devtlb-entries", "2");
  // a group is selected from the keyboard, and all its messages are marked
  await prq.locator("g.group").first().focus();
  await page.keyboard.press("Enter");
  await expect(prq).toHaveAttribute("data-selected-group", "G1");
  await expect(prq.locator("g.msg.selected")).toHaveCount(14);
  await prq.screenshot({ path: "test-results/view-prq.png" });
  await page.keyboard.press("Escape");
  await expect(prq).toHaveAttribute("data-selected-group", "");
  // back in time, while the two requests wait in the ring
  await logLine(page, /^read\(/).first().click();
  await expect(prq).toHaveAttribute("data-ring-tail", "2");
  await expect(prq).toHaveAttribute("data-devtlb-entries", "0");
});
