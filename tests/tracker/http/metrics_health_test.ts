import assert from "node:assert/strict";
import { startTestOperator } from "../../helpers/operator.ts";
import { createIdentity } from "../../../lib/identity/certificate.ts";
import { TLS_SERVER_NAME } from "../../../lib/protocol/tls.ts";

/** Prometheus text → sample name (with labels) → value; checks every line's shape on the way. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\w+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const sample = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (-?[\d.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(sample, `not a Prometheus sample line: ${line}`);
    samples.set(`${sample[1]}${sample[2] ?? ""}`, Number(sample[3]));
  }
  assert.ok(types.size > 0, "no # TYPE lines");
  // Prometheus's naming: `_total` is a counter's and only a counter's suffix.
  for (const [name, type] of types) {
    assert.equal(name.endsWith("_total"), type === "counter", `${name} is a ${type}`);
  }
  return samples;
}

Deno.test("GET /metrics - Prometheus text with shoal_* counts, counters and the lookup histogram", async () => {
  await using op = await startTestOperator();
  const carol = await op.running.login("carol");
  await carol.call("announce", { port: 9 });
  await carol.call("publish", {
    name: "a.bin",
    type: "bin",
    size: 5000,
    contentId: "a".repeat(64),
  });
  await carol.call("lookup", { name: "a.bin" });
  await carol.call("sources", { contentId: "a".repeat(64) });
  await op.browser().login("carol", "not the password");
  const response = await op.browser().fetch("/metrics");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("Content-Type") ?? "", /^text\/plain/);
  const samples = parseMetrics(await response.text());
  const get = (name: string) => {
    assert.ok(samples.has(name), `${name} missing`);
    return samples.get(name)!;
  };
  assert.equal(get("shoal_peers_online"), 1);
  assert.equal(get("shoal_accounts"), 1);
  assert.equal(get("shoal_shares"), 1);
  assert.equal(get("shoal_published_bytes"), 5000);
  assert.equal(get('shoal_logins_total{result="ok",via="protocol"}'), 1);
  assert.equal(get('shoal_logins_total{result="failed",via="dashboard"}'), 1);
  assert.equal(get("shoal_tickets_issued_total"), 1);
  assert.equal(get('shoal_lookup_duration_seconds_count{method="lookup"}'), 1);
  assert.equal(get('shoal_lookup_duration_seconds_bucket{le="+Inf",method="lookup"}'), 1);
  assert.equal(get('shoal_lookup_duration_seconds_count{method="sources"}'), 1);
  assert.ok(get("shoal_open_connections") >= 1);
  assert.ok(get("shoal_database_size_bytes") > 0);
  assert.ok(get("shoal_process_resident_memory_bytes") > 0);
  for (const name of samples.keys()) assert.match(name, /^shoal_/);
});

Deno.test("GET /healthz - 200 while the database answers, 503 once it is closed", async () => {
  await using op = await startTestOperator();
  const ok = await op.browser().json("/healthz");
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, { status: "ok", database: "ok" });
  op.running.store.close();
  const down = await op.browser().json("/healthz");
  assert.equal(down.status, 503);
  assert.equal(down.body.status, "error");
  assert.equal(typeof down.body.database, "string");
});

Deno.test("HTTPS - the HTTP side serves the tracker's own certificate, and Secure cookies", async () => {
  const tls = await createIdentity();
  await using op = await startTestOperator({ tls });
  assert.match(op.url, /^https:\/\//);
  // The certificate names "shoal", not the IP: verified against itself as its own authority.
  using tcp = await Deno.connect({ hostname: "127.0.0.1", port: op.http.address.port });
  const conn = await Deno.startTls(tcp, { hostname: TLS_SERVER_NAME, caCerts: [tls.certificate] });
  await conn.write(
    new TextEncoder().encode("GET /login HTTP/1.1\r\nHost: shoal\r\nConnection: close\r\n\r\n"),
  );
  let text = "";
  for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) text += chunk;
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.match(text, /set-cookie: shoal_login_csrf=[^\r]*Secure/i);
});
