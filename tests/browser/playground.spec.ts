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
const vfio = open("/dev/vfio/devices/vfio0");
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
