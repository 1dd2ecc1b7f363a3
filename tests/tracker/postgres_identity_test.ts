/**
 * One tracker on one PostgreSQL has one identity, and one serving connection
 * per account across its processes: the first serving process records its
 * TLS certificate's fingerprint and ticket key, a process with another is
 * refused in one line naming both; an account online through one process
 * cannot announce from another serve through a second, and when the same
 * serve fails over, the first process's stale connection is told at its next
 * heartbeat and the account stays online where it moved. One throwaway
 * cluster for the file; skipped with a message where PostgreSQL is not
 * installed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fingerprintOf } from "../../lib/identity/certificate.ts";
import { createTrackerIdentity } from "../../lib/identity/tracker_identity.ts";
import { ProtocolClient } from "../../lib/protocol/client.ts";
import { TRACKER_METHODS } from "../../lib/protocol/messages.ts";
import { PasswordHasher } from "../../lib/tracker/passwords.ts";
import { PostgresTrackerStore } from "../../lib/tracker/postgres_store.ts";
import { Tracker } from "../../lib/tracker/tracker.ts";
import { runTrackerCli } from "../helpers/cli.ts";
import { shoalError } from "../helpers/errors.ts";
import { startTestPostgres } from "../helpers/postgres.ts";
import { CHEAP_COST, testTicketKey } from "../helpers/tracker.ts";

Deno.test("PostgreSQL - one identity and one serving connection per account across processes", async (t) => {
  const cluster = await startTestPostgres();
  if (typeof cluster === "string") {
    console.log(`skipped: no PostgreSQL to test against: ${cluster}`);
    return;
  }
  await using pg = cluster;
  const temp = await Deno.makeTempDir({ prefix: "shoal-pg-identity-" });
  try {
    const first = await createTrackerIdentity(join(temp, "first"));
    const other = await createTrackerIdentity(join(temp, "other"));
    const firstId = {
      certificateFingerprint: fingerprintOf(first.tls.certificate),
      ticketKey: first.ticketKey.publicKeyBase64,
    };
    const otherId = {
      certificateFingerprint: fingerprintOf(other.tls.certificate),
      ticketKey: other.ticketKey.publicKeyBase64,
    };

    await t.step(
      "the first process records its identity; one with another is refused",
      async () => {
        const url = await pg.newDatabase();
        await using a = await PostgresTrackerStore.open(url);
        await using b = await PostgresTrackerStore.open(url);
        assert.equal(await a.recordedIdentity(), null);
        await a.claimIdentity(firstId);
        await b.claimIdentity(firstId);
        assert.deepEqual(await b.recordedIdentity(), firstId);
        // A plaintext process shares the ticket key, and has no certificate to compare.
        await b.claimIdentity({ certificateFingerprint: null, ticketKey: firstId.ticketKey });

        const refused = await b.claimIdentity(otherId).then(() => null, (error) => error);
        assert.equal(refused?.code, "CERTIFICATE_MISMATCH");
        const message = String(refused.message);
        assert.ok(!message.includes("\n"), message);
        for (
          const named of [
            firstId.certificateFingerprint,
            otherId.certificateFingerprint,
            firstId.ticketKey,
            otherId.ticketKey,
            "tracker.ts identity init --out DIR",
            "--identity DIR",
          ]
        ) assert.ok(message.includes(named), `${named} in: ${message}`);
        // Only the certificate differs (say, --tls-cert of another): named alone.
        await assert.rejects(
          () =>
            b.claimIdentity({
              certificateFingerprint: otherId.certificateFingerprint,
              ticketKey: firstId.ticketKey,
            }),
          (error: Error) =>
            /TLS certificate/.test(error.message) && !/ticket key/.test(error.message),
        );
        // A plaintext process with its own ticket key is refused too: its tickets would fail.
        await assert.rejects(
          () => b.claimIdentity({ certificateFingerprint: null, ticketKey: otherId.ticketKey }),
          shoalError("CERTIFICATE_MISMATCH", /ticket key/),
        );
        assert.deepEqual(await a.recordedIdentity(), firstId, "a refusal changes nothing");

        // A deliberate change: forgotten, then the next process records its own.
        assert.equal(await a.forgetIdentity(), true);
        await b.claimIdentity(otherId);
        assert.deepEqual(await a.recordedIdentity(), otherId);
      },
    );

    await t.step(
      "a plaintext first process records its key; the first TLS one adds its certificate",
      async () => {
        const url = await pg.newDatabase();
        await using store = await PostgresTrackerStore.open(url);
        await store.claimIdentity({ certificateFingerprint: null, ticketKey: firstId.ticketKey });
        await store.claimIdentity(firstId);
        assert.deepEqual(await store.recordedIdentity(), firstId);
        await assert.rejects(
          () =>
            store.claimIdentity({
              certificateFingerprint: otherId.certificateFingerprint,
              ticketKey: firstId.ticketKey,
            }),
          shoalError("CERTIFICATE_MISMATCH"),
        );
      },
    );

    await t.step("serve with another --identity stops in one line, before listening", async () => {
      const url = await pg.newDatabase();
      {
        await using store = await PostgresTrackerStore.open(url);
        await store.claimIdentity(firstId);
      }
      const serve = (dir: string, ...more: string[]) =>
        runTrackerCli([
          "serve",
          "--db",
          url,
          "--identity",
          join(temp, dir),
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--http-port",
          "off",
          "--no-announce",
          ...more,
        ]);
      for (const plaintext of [[], ["--insecure-plaintext"]]) {
        const result = await serve("other", ...plaintext);
        assert.equal(result.code, 1, result.stdout + result.stderr);
        assert.doesNotMatch(result.stdout, /listening on/);
        const line = result.stderr.split("\n").find((text) => text.includes("identity is not"));
        assert.ok(line, result.stderr);
        assert.ok(line.includes(firstId.ticketKey) && line.includes(otherId.ticketKey), line);
        if (plaintext.length === 0) {
          assert.ok(line.includes(firstId.certificateFingerprint), line);
          assert.ok(line.includes(otherId.certificateFingerprint), line);
        }
        // Named as it runs: serve's own --insecure-plaintext is no option of `identity init`.
        assert.match(line, /tracker\.ts identity init --out DIR/);
      }
      // The admin commands read the database whatever identity they would have.
      const peers = await runTrackerCli(["peers", "--db", url, "--json"]);
      assert.equal(peers.code, 0, peers.stderr);
      const forget = await runTrackerCli(["identity", "forget", "--db", url]);
      assert.equal(forget.code, 0, forget.stderr);
      assert.match(forget.stdout, /identity forgotten/);
    });

    await t.step(
      "an account online through one process is ALREADY_ONLINE through another; a fail-over moves it and the old connection is told",
      async () => {
        const url = await pg.newDatabase();
        await using storeA = await PostgresTrackerStore.open(url);
        await using storeB = await PostgresTrackerStore.open(url);
        const ticketKey = await testTicketKey();
        const passwords = new PasswordHasher({ cost: CHEAP_COST });
        const trackerA = new Tracker(storeA, { ticketKey, passwords, warn: () => {} });
        const trackerB = new Tracker(storeB, { ticketKey, passwords, warn: () => {} });
        const addressA = await trackerA.listen({ host: "127.0.0.1", port: 0 });
        const addressB = await trackerB.listen({ host: "127.0.0.1", port: 0 });
        const clients: ProtocolClient<typeof TRACKER_METHODS>[] = [];
        const connect = async (address: typeof addressA) => {
          const client = await ProtocolClient.connect(address, TRACKER_METHODS, {
            agent: "test",
            expect: "tracker",
          });
          clients.push(client);
          await client.call("login", { username: "alice", password: "correct horse" });
          return client;
        };
        try {
          const signup = await ProtocolClient.connect(addressA, TRACKER_METHODS, {
            agent: "test",
            expect: "tracker",
          });
          clients.push(signup);
          await signup.call("register", { username: "alice", password: "correct horse" });

          const onA = await connect(addressA);
          await onA.call("announce", { port: 7000, instance: "serve-one" });
          assert.equal((await storeB.getPeer("alice"))?.port, 7000);

          // Another serve (or a shell) through B: refused, as through A; nothing changes.
          const second = await connect(addressB);
          await assert.rejects(
            () => second.call("announce", { port: 7001, instance: "serve-two" }),
            shoalError("ALREADY_ONLINE", /already online at 127\.0\.0\.1:7000/),
          );
          await assert.rejects(
            () => second.call("announce", { port: 7001 }),
            shoalError("ALREADY_ONLINE"),
          );
          await onA.call("heartbeat", {});
          const still = await storeA.getPeer("alice");
          assert.equal(still?.online, true);
          assert.equal(still?.port, 7000);

          // The same serve fails over to B while its connection to A is not yet gone: B takes it.
          const movedToB = await connect(addressB);
          await movedToB.call("announce", { port: 7002, instance: "serve-one" });
          assert.equal((await storeA.getPeer("alice"))?.port, 7002);
          // A's stale connection is told at its next heartbeat, and does not take the peer back.
          await assert.rejects(
            () => onA.call("heartbeat", {}),
            shoalError("ALREADY_ONLINE", /another of the tracker's processes/),
          );
          await movedToB.call("heartbeat", {});
          const moved = await storeB.getPeer("alice");
          assert.equal(moved?.online, true);
          assert.equal(moved?.port, 7002);
          // Its closing leaves the account online through B.
          onA.close();
          await trackerA.close();
          assert.equal((await storeB.getPeer("alice"))?.online, true);
          assert.equal((await storeB.getPeer("alice"))?.port, 7002);
          // And through B it goes offline when its connection there ends.
          movedToB.close();
          let offline = false;
          for (let tried = 0; tried < 100 && !offline; tried++) {
            offline = (await storeB.getPeer("alice"))?.online === false;
            if (!offline) await new Promise((resolve) => setTimeout(resolve, 50));
          }
          assert.ok(offline, "offline after its connection through B ends");
        } finally {
          for (const client of clients) client.close();
          await trackerA.close();
          await trackerB.close();
        }
      },
    );
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
});
