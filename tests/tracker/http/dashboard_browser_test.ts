/**
 * The dashboard in a real browser (Debian's chromium through puppeteer-core),
 * against a real tracker and real peers in this process, over HTTPS with the
 * tracker's own certificate: an admin logs in through the form, sees every
 * number the API gives, sees a peer come online and go offline without
 * reloading, pings it (both round-trip times), searches shares, opens a
 * peer's page, and the pages fit a phone's width. Screenshots go to the
 * test's folder, kept (and named) when the test fails or
 * SHOAL_KEEP_SCREENSHOTS is set. Skips with a message without chromium.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { loadOrCreateIdentity } from "../../../lib/identity/key_files.ts";
import { publish } from "../../../lib/peer/shares.ts";
import { grantAdmin } from "../../../lib/tracker/admins.ts";
import { NO_BROWSER, startBrowser } from "../../helpers/browser.ts";
import { localPeer, servePeer, type ServingPeer } from "../../helpers/local_peers.ts";
import { OPERATOR_TEST_PASSWORD, startTestOperator } from "../../helpers/operator.ts";

if (NO_BROWSER) console.log(`dashboard browser tests skipped: ${NO_BROWSER}`);

const PHONE = { width: 390, height: 844 };

/** Whether the OS ping the tracker runs is there (iputils-ping): then its RTT must show. */
const PING_INSTALLED = ["/usr/bin/ping", "/bin/ping"].some((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

/** The text of each cell of the row `selector` matches. */
async function cellsOf(page: Page, selector: string): Promise<string[]> {
  return await page.$eval(selector, (tr) => [...tr.children].map((td) => td.textContent ?? ""));
}

/** GETs an /api/v1 path from inside the page, with its session, as the dashboard does. */
// deno-lint-ignore no-explicit-any
async function apiInPage(page: Page, path: string): Promise<any> {
  return await page.evaluate(async (url) => {
    const response = await fetch(url, { credentials: "same-origin" });
    return await response.json();
  }, path);
}

/** Text and data-value of every element `selector` matches. */
async function texts(page: Page, selector: string): Promise<string[]> {
  return await page.$$eval(selector, (nodes) => nodes.map((node) => node.textContent ?? ""));
}

/** Marks the page's window, to tell later that it was never reloaded. */
async function mark(page: Page): Promise<void> {
  await page.evaluate(() => Object.assign(globalThis, { shoalNotReloaded: true }));
}

async function stillMarked(page: Page): Promise<boolean> {
  return await page.evaluate(() => "shoalNotReloaded" in globalThis);
}

/** The page is no wider than the viewport: nothing scrolls sideways. */
async function fitsWidth(page: Page): Promise<{ scrollWidth: number; width: number }> {
  return await page.evaluate(
    "({ scrollWidth: document.documentElement.scrollWidth, width: innerWidth })",
  ) as { scrollWidth: number; width: number };
}

Deno.test({
  name:
    "dashboard - an admin logs in, sees a peer come online live, pings it, searches, at phone width too",
  ignore: NO_BROWSER !== null,
  // puppeteer's child process and socket outlive a single step's bookkeeping.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "shoal-dashboard-" });
    const shots = join(dir, "screenshots");
    await Deno.mkdir(shots);
    let passed = false;
    try {
      await using op = await startTestOperator({
        tls: await loadOrCreateIdentity(dir, "tracker.db.tls-"),
      });
      const tracker = `127.0.0.1:${op.running.port}`;
      await op.account("root");
      await grantAdmin(op.running.store, "root");

      // alice published a file and is offline; bob published one and serves later.
      await Deno.writeTextFile(join(dir, "notes.txt"), "lecture notes\n".repeat(100));
      await Deno.writeTextFile(join(dir, "photos.txt"), "holiday photos\n".repeat(3000));
      {
        using alice = await localPeer(dir, "alice", tracker);
        await publish(alice.home, alice.endpoint, join(dir, "notes.txt"), "lecture-notes.txt");
        using bob = await localPeer(dir, "bob", tracker);
        await publish(bob.home, bob.endpoint, join(dir, "photos.txt"), "holiday-photos.txt");
      }

      await using browser = await startBrowser(dir);
      const { page, problems } = await browser.page();
      const shot = (name: string) => page.screenshot({ path: join(shots, name), fullPage: true });

      await t.step("log in through the form and land on the overview", async () => {
        await page.goto(`${op.url}/`);
        assert.equal(
          new URL(page.url()).pathname,
          "/login",
          "a page without a session sends to /login",
        );
        await shot("login.png");
        await page.type("#username", "root");
        await page.type("#password", OPERATOR_TEST_PASSWORD);
        await Promise.all([page.waitForNavigation(), page.locator("#login").click()]);
        assert.equal(new URL(page.url()).pathname, "/");
        await page.waitForSelector("#stat-accounts[data-value]");
        await page.waitForSelector("#who:not(:empty)");
        assert.equal(await page.$eval("#who", (node) => node.textContent), "root");
      });

      await t.step("every number on the overview is the API's", async () => {
        const summary = await apiInPage(page, "/api/v1/summary");
        for (const name of ["peersOnline", "peers", "accounts", "shares", "bytesPublished"]) {
          const shown = await page.$eval(
            `#stat-${name}`,
            (node) => node.getAttribute("data-value"),
          );
          assert.equal(shown, String(summary[name]), name);
        }
        assert.deepEqual(
          await texts(page, "#stat-peersOnline, #stat-accounts, #stat-shares"),
          [String(summary.peersOnline), String(summary.accounts), String(summary.shares)],
        );
        const { minutes } = await apiInPage(page, "/api/v1/history");
        const publishes = minutes.reduce(
          (sum: number, m: { publishes: number }) => sum + m.publishes,
          0,
        );
        await page.waitForSelector(`#activity-totals[data-publishes="${publishes}"]`);
        await page.waitForSelector("#chart-online canvas");
        await page.waitForSelector('#feed li[data-type="publish"]');
        await shot("overview.png");
      });

      let serving: ServingPeer | null = null;
      try {
        await t.step("a peer comes online on the peers page without a reload", async () => {
          await page.goto(`${op.url}/peers`);
          await page.waitForSelector('#peers tbody tr[data-user="bob"][data-online="false"]');
          await page.waitForSelector("#live[data-state=live]");
          await mark(page);
          serving = await servePeer(join(dir, "bob"), tracker);
          await page.waitForSelector('#peers tbody tr[data-user="bob"][data-online="true"]');
          assert.ok(await stillMarked(page), "the page was not reloaded");
          const { peers } = await apiInPage(page, "/api/v1/peers");
          const bob = peers.find((peer: { username: string }) => peer.username === "bob");
          assert.deepEqual(await cellsOf(page, 'tr[data-user="bob"]'), [
            "bob",
            "online",
            bob.address,
            await page.$eval('tr[data-user="bob"] time', (node) => node.textContent ?? ""),
            String(bob.shares),
            "Ping",
          ]);
          assert.equal(
            await page.$eval("#peer-count", (node) => node.getAttribute("data-online")),
            String(peers.filter((peer: { online: boolean }) => peer.online).length),
          );
        });

        await t.step(
          "Ping shows both round-trip times: the OS ping and the protocol probe of the peer process",
          async () => {
            await page.locator('tr[data-user="bob"] button.ping').click();
            const result = 'tr[data-user="bob"] .ping-result[data-probe-ok]';
            await page.waitForSelector(result);
            const text = await page.$eval(result, (node) => node.textContent ?? "");
            assert.match(text, /peer process \d+(\.\d+)? ms/, text);
            const osPing = await page.$eval(result, (node) => node.getAttribute("data-os-ok"));
            if (PING_INSTALLED) {
              assert.equal(osPing, "true", text);
              assert.match(text, /^OS ping \d+(\.\d+)? ms · /, text);
            } else assert.match(text, /^OS ping /, text);
            // An account that never served has no address to ping: the row says so.
            await page.locator('tr[data-user="root"] button.ping').click();
            await page.waitForSelector('tr[data-user="root"] .ping-result.failed');
            await shot("peers.png");
          },
        );

        await t.step("shares: search by name, every owner shown, the count the API's", async () => {
          await page.goto(`${op.url}/shares`);
          await page.waitForSelector('#shares tbody tr[data-name="lecture-notes.txt"]');
          assert.deepEqual((await texts(page, "#shares tbody tr td:nth-child(2)")).sort(), [
            "alice",
            "bob",
          ]);
          await page.type("#search", "HOLIDAY");
          await page.waitForFunction(
            `document.querySelectorAll("#shares tbody tr").length === 1 &&
              document.querySelector('#shares tbody tr[data-name="holiday-photos.txt"]') !== null`,
          );
          const { total } = await apiInPage(page, "/api/v1/shares?q=HOLIDAY");
          assert.equal(
            await page.$eval("#share-count", (node) => node.getAttribute("data-total")),
            String(total),
          );
          assert.equal(new URL(page.url()).searchParams.get("q"), "HOLIDAY");
          await shot("shares.png");
        });

        await t.step("a peer's page lists its shares", async () => {
          await Promise.all([
            page.waitForNavigation(),
            page.locator('#shares tbody tr[data-name="holiday-photos.txt"] a').click(),
          ]);
          assert.equal(new URL(page.url()).pathname, "/peers/bob");
          await page.waitForSelector('#shares tbody tr[data-name="holiday-photos.txt"]');
          const { peer, shares } = await apiInPage(page, "/api/v1/peers/bob");
          assert.equal(
            await page.$eval("#peer-shares", (node) => node.textContent),
            String(peer.shares),
          );
          assert.equal((await texts(page, "#shares tbody tr")).length, shares.length);
          assert.equal(await page.$eval("#peer-address", (node) => node.textContent), peer.address);
          await shot("peer.png");
        });

        await t.step("the overview sees the peer go offline, live", async () => {
          await page.goto(`${op.url}/`);
          await page.waitForSelector('#stat-peersOnline[data-value="1"]');
          await page.waitForSelector("#live[data-state=live]");
          await mark(page);
          await serving![Symbol.asyncDispose]();
          serving = null;
          await page.waitForSelector('#feed li[data-type="peer.offline"]');
          await page.waitForSelector('#stat-peersOnline[data-value="0"]');
          assert.ok(await stillMarked(page), "the page was not reloaded");
        });
      } finally {
        await (serving as ServingPeer | null)?.[Symbol.asyncDispose]();
      }

      await t.step("every page fits a phone's width (390 px)", async () => {
        await page.setViewport(PHONE);
        for (
          const [path, ready, name] of [
            ["/", "#chart-online canvas", "overview-phone.png"],
            ["/peers", 'tr[data-user="bob"]', "peers-phone.png"],
            ["/shares", 'tr[data-name="holiday-photos.txt"]', "shares-phone.png"],
            ["/peers/alice", 'tr[data-name="lecture-notes.txt"]', "peer-phone.png"],
          ]
        ) {
          await page.goto(`${op.url}${path}`);
          await page.waitForSelector(ready);
          const { scrollWidth, width } = await fitsWidth(page);
          assert.equal(width, PHONE.width);
          assert.ok(scrollWidth <= PHONE.width, `${path} is ${scrollWidth} px wide at ${width} px`);
          await shot(name);
        }
      });

      await t.step(
        "Log out ends the session: back to the login page, and the API says 401",
        async () => {
          await Promise.all([page.waitForNavigation(), page.locator("#logout").click()]);
          assert.equal(new URL(page.url()).pathname, "/login");
          const status = await page.evaluate(
            async (url) => (await fetch(url)).status,
            "/api/v1/session",
          );
          assert.equal(status, 401);
        },
      );

      await t.step("no script error, console error or failed request on any page", () => {
        // The error answers asked for: the ping of an account that never served,
        const rootPing = `404: ${op.url}/api/v1/peers/root/ping`;
        // And the 401 the logged-out check asked for.
        const loggedOut = `401: ${op.url}/api/v1/session`;
        assert.deepEqual(
          problems.filter((problem) => problem !== rootPing && problem !== loggedOut),
          [],
        );
      });
      passed = true;
    } finally {
      if (!passed || Deno.env.get("SHOAL_KEEP_SCREENSHOTS")) {
        console.log(`dashboard screenshots kept in ${shots}`);
      } else await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "dashboard - when the tracker stops answering, a banner says so across the page (not only the header's dot)",
  ignore: NO_BROWSER !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "shoal-dashboard-gone-" });
    try {
      await using op = await startTestOperator();
      await op.account("root");
      await grantAdmin(op.running.store, "root");
      await using browser = await startBrowser(dir);
      const { page } = await browser.page();
      await page.goto(`${op.url}/login`);
      await page.type("#username", "root");
      await page.type("#password", OPERATOR_TEST_PASSWORD);
      await Promise.all([page.waitForNavigation(), page.locator("#login").click()]);
      await page.waitForSelector('#live[data-state="live"]');
      assert.equal(await page.$eval("#connection", (node) => node.hidden), true);
      await op.http.close();
      await page.waitForSelector("#connection:not([hidden])");
      const text = await page.$eval("#connection", (node) => node.textContent ?? "");
      assert.match(
        text,
        /^The tracker is not answering since .+: what this page shows is from then/,
      );
      await page.screenshot({ path: join(dir, "tracker-gone.png"), fullPage: true });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
