/**
 * A real browser for the dashboard's tests: Debian's `chromium`, headless,
 * driven by puppeteer-core, with a fresh profile in the test's folder and
 * no background traffic (on a closed network chromium otherwise keeps
 * trying to reach its update and sync services). Where no chromium can be
 * had, {@link CHROMIUM} is null and the tests skip with a message.
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";

/** Where chromium may be; `SHOAL_CHROMIUM` names another. */
const CANDIDATES = [
  Deno.env.get("SHOAL_CHROMIUM"),
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
].filter((path): path is string => !!path);

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The chromium the tests drive, or null where there is none. */
export const CHROMIUM: string | null = CANDIDATES.find(isFile) ?? null;

/** Why the browser tests skip, or null when they run. */
export const NO_BROWSER: string | null = CHROMIUM === null
  ? `no chromium at ${CANDIDATES.join(", ")} (apt-get install chromium, or set SHOAL_CHROMIUM)`
  : null;

/** How long any one wait in a browser test may take. */
export const BROWSER_WAIT_MS = 15_000;

/** A running browser; disposing it closes it. */
export interface TestBrowser extends AsyncDisposable {
  browser: Browser;
  /** A new page with every wait bounded, collecting what went wrong on it. */
  page(): Promise<TestPage>;
}

/** A page and what it reported: uncaught errors, console errors, failed requests and error answers. */
export interface TestPage {
  page: Page;
  problems: string[];
}

/**
 * Starts chromium with a fresh profile in `dir`. It accepts the tracker's
 * self-signed certificate: the tests check the dashboard, not the trust a
 * browser gives a certificate (an operator uses `--tls-cert` for that).
 */
export async function startBrowser(dir: string): Promise<TestBrowser> {
  if (CHROMIUM === null) throw new Error(NO_BROWSER!);
  const profile = await Deno.makeTempDir({ dir, prefix: "chromium-profile-" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    acceptInsecureCerts: true,
    userDataDir: profile,
    timeout: BROWSER_WAIT_MS * 2,
    args: [
      "--no-sandbox",
      "--headless=new",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  return {
    browser,
    async page() {
      const page = await browser.newPage();
      page.setDefaultTimeout(BROWSER_WAIT_MS);
      page.setDefaultNavigationTimeout(BROWSER_WAIT_MS);
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error}`));
      page.on("console", (message) => {
        // A failed load is reported below, with its address.
        if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
          problems.push(`console error: ${message.text()}`);
        }
      });
      page.on("response", (response) => {
        if (response.status() >= 400) problems.push(`${response.status()}: ${response.url()}`);
      });
      page.on("requestfailed", (request) => {
        // An event stream is cut when the page goes away; that is no fault.
        if (!request.url().endsWith("/api/v1/events/stream")) {
          problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
        }
      });
      return { page, problems };
    },
    async [Symbol.asyncDispose]() {
      await browser.close().catch(() => {});
    },
  };
}
