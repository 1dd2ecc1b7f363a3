/**
 * Bad input from users and from the network, through the peer and tracker
 * programs run in this process against an in-process tracker and serve.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAddress } from "../../lib/protocol/address.ts";
import { PeerHome } from "../../lib/peer/home.ts";
import { startServing } from "../../lib/peer/serve.ts";
import { stoppedServingLine } from "../../lib/cli/peer_program.ts";
import { TLS_SERVER_NAME } from "../../lib/protocol/tls.ts";
import { CliPeer, runTrackerCli } from "../helpers/cli.ts";
import { eventually } from "../helpers/eventually.ts";
import { servePeer, startLocalTracker } from "../helpers/local_peers.ts";
import { sha256File, tempDir, writeRandomFile } from "../helpers/processes.ts";

/**
 * Sends raw bytes to a port (inside TLS when given the server's certificate)
 * and reads whatever comes back until the server closes or goes quiet.
 */
async function sendRaw(port: number, bytes: Uint8Array, certificate?: string): Promise<Uint8Array> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  const conn = certificate
    ? await Deno.startTls(tcp, { hostname: TLS_SERVER_NAME, caCerts: [certificate] })
    : tcp;
  try {
    await conn.write(bytes);
    const received: number[] = [];
    const buffer = new Uint8Array(4096);
    const deadline = setTimeout(() => conn.close(), 3000);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        received.push(...buffer.subarray(0, n));
      }
    } catch {
      // Closed by our deadline: the server kept the connection open, which is fine too.
    } finally {
      clearTimeout(deadline);
    }
    return new Uint8Array(received);
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

function randomBytes(length: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(length));
}

/** A frame header announcing ~4 GiB, with no body. */
const OVERSIZED = new Uint8Array([0xff, 0xff, 0xff, 0xf0]);

Deno.test("bad input gets a clear one-line error and everyone keeps working", async (t) => {
  await using dir = await tempDir();
  const db = join(dir.path, "tracker.db");
  const tracker = await startLocalTracker(dir.path);
  const alice = new CliPeer(join(dir.path, "alice"), tracker.address);
  const bob = new CliPeer(join(dir.path, "bob"), tracker.address);
  await alice.signUp("alice");
  await bob.signUp("bob");
  const source = join(dir.path, "paper.txt");
  await writeRandomFile(source, 400_000);
  await alice.ok(["publish", source]);
  const serving = await servePeer(alice.home, tracker.address);
  const peerPort = serving.port;
  let fetches = 0;
  const fetchStillWorks = async () => {
    const output = join(dir.path, `copy-${++fetches}.txt`);
    await bob.ok(["fetch", "paper.txt", "--output", output]);
    assert.equal(await sha256File(output), await sha256File(source));
  };

  try {
    await t.step("a wrong password", async () => {
      const result = await bob.run(["login", "bob", "--password-stdin"], {
        stdin: "not-it-at-all\n",
      });
      assert.equal(result.code, 1);
      const [error, hint, ...rest] = result.stderr.trim().split("\n");
      assert.equal(error, "error: wrong username or password");
      // What to do next: the password again, or an account first.
      assert.match(hint, /^hint: check the username .*`.*register <username>` makes one$/);
      assert.deepEqual(rest, []);
    });

    await t.step("a tracker that is not running", async () => {
      const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = closed.addr.port;
      closed.close();
      const result = await bob.run(["--tracker", `127.0.0.1:${port}`, "search", "x"]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        new RegExp(`^error: cannot reach 127\\.0\\.0\\.1:${port}: `, "m"),
      );
      assert.match(result.stderr, /^hint: is the tracker running\? start one with `.+ serve`/m);
    });

    await t.step("a duplicate username, in any letter case", async () => {
      const result = await bob.run(["register", "ALICE", "--password-stdin"], {
        stdin: "whatever-pass\n",
      });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^error: the username "ALICE" is already taken$/m);
    });

    await t.step("a weak password and a bad username", async () => {
      const weak = await bob.run(["register", "carol", "--password-stdin"], { stdin: "short\n" });
      assert.equal(weak.code, 1);
      assert.match(weak.stderr, /at least 8 characters/);
      const spaced = await bob.run(["register", "c d", "--password-stdin"], {
        stdin: "long-enough\n",
      });
      assert.equal(spaced.code, 1);
      assert.match(spaced.stderr, /username is 2-32 letters/);
    });

    await t.step("publishing a missing path or a named pipe", async () => {
      const missing = await alice.run(["publish", join(dir.path, "nope.pdf")]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^error: no such file or folder: .*nope\.pdf$/m);
      assert.match(missing.stderr, /^hint: a relative path starts in the folder you typed/m);
      const fifo = join(dir.path, "pipe");
      await new Deno.Command("mkfifo", { args: [fifo] }).output();
      const piped = await alice.run(["publish", fifo]);
      assert.equal(piped.code, 1);
      assert.match(piped.stderr, /not a regular file/);
    });

    await t.step("fetching an unknown name", async () => {
      const result = await bob.run(["fetch", "no-such-thing"]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /^error: "no-such-thing" not found: nobody publishes a file or folder by that name$/m,
      );
      // The hint names a command that runs as the user would type it.
      assert.match(result.stderr, /^hint: `.*peer\.ts.* search <part of the name>` lists /m);
    });

    await t.step("fetching a name one letter off a shared one suggests that one", async () => {
      await alice.ok(["publish", "lecture-notes", source]);
      const result = await bob.run(["fetch", "lecture-notez"]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /^error: "lecture-notez" not found: nobody publishes a file or folder by that name; did you mean "lecture-notes"\?$/m,
      );
      // The hint's command runs as typed: the name it suggests, fetched.
      assert.match(result.stderr, /^hint: `.*peer\.ts.* fetch lecture-notes` fetches that one; /m);
      await alice.ok(["unpublish", "lecture-notes"]);
    });

    await t.step("a usage error exits 2", async () => {
      const result = await bob.run(["fetch"]);
      assert.equal(result.code, 2);
      const unknown = await bob.run(["fecth", "x"]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /did you mean fetch/i);
    });

    await t.step("a second serve of the same account waits instead of taking over", async () => {
      // A second `peer.ts serve` of alice's home, in this process.
      using home = PeerHome.open(alice.home);
      const lines: string[] = [];
      const second = await startServing(home, {
        tracker: { addresses: [parseAddress(tracker.address)], plaintext: false, notice: () => {} },
        listen: { host: "127.0.0.1", port: 0 },
        log: (line) => lines.push(line),
        warn: (line) => lines.push(line),
        onLoggedOut: (error) => lines.push(`logged out: ${error.message}`),
      });
      try {
        const waiting = /alice is already online at 127\.0\.0\.1:\d+ from another serve/;
        await eventually(
          () => lines.some((line) => waiting.test(line)),
          () => `the second serve saying it waits; it said:\n${lines.join("\n")}`,
        );
        await fetchStillWorks();
        // Stopped now, it took nothing offline, and says so (not "your files are offline").
        assert.equal(second.wasOnline(), false);
        assert.equal(
          stoppedServingLine(second.wasOnline()),
          "stopped; this serve never came online, so nothing changed for your files",
        );
      } finally {
        await second.stop();
      }
    });

    await t.step("publish with the path first and the name second names the order", async () => {
      const result = await alice.run(["publish", source, "notes-swapped"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^error: no such file or folder: notes-swapped$/m);
      assert.match(
        result.stderr,
        new RegExp(
          "^hint: the name comes first, then the path: `.*peer\\.ts.* publish notes-swapped " +
            `${RegExp.escape(source)}\`$`,
          "m",
        ),
      );
    });

    await t.step("fetching a file only you share", async () => {
      await alice.ok(["publish", "solo", source]);
      const result = await alice.run(["fetch", "solo", "--output", join(dir.path, "own")]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        new RegExp(
          `^error: you are the only one sharing "solo": yours is ${RegExp.escape(source)}; ` +
            "there is nobody to fetch it from$",
          "m",
        ),
      );
      assert.match(result.stderr, /^hint: `.*view` lists your shares$/m);
    });

    await t.step(
      "fetching again a file already fetched says you have it, not only that it exists",
      async () => {
        const output = join(dir.path, "paper-again.txt");
        await bob.ok(["fetch", "paper.txt", "--output", output]);
        const result = await bob.run(["fetch", "paper.txt", "--output", output]);
        assert.equal(result.code, 1);
        assert.match(
          result.stderr,
          new RegExp(
            `^error: ${RegExp.escape(output)} already exists and is "paper\\.txt": you share it ` +
              `as "paper\\.txt", so there is nothing to fetch$`,
            "m",
          ),
        );
        assert.match(result.stderr, /^hint: `.*view` lists your shares$/m);
        // Your copy deleted since, the same fetch fetches it again.
        await Deno.remove(output);
        await bob.ok(["fetch", "paper.txt", "--output", output]);
        // Elsewhere than your copy, a file in the way is only in the way.
        const other = join(dir.path, "in-the-way.txt");
        await Deno.writeTextFile(other, "something else\n");
        const blocked = await bob.run(["fetch", "paper.txt", "--output", other]);
        assert.match(blocked.stderr, /already exists; use --output PATH or --force$/m);
        await bob.ok(["unpublish", "paper.txt"]);
      },
    );

    await t.step(
      "--from yourself says it is you, not that you are the only one sharing it",
      async () => {
        // Alice shares paper.txt; bob names himself as its source.
        const result = await bob.run(["fetch", "paper.txt", "--from", "BOB"]);
        assert.equal(result.code, 1);
        assert.match(result.stderr, /^error: --from BOB is you: your own copy is no source$/m);
        assert.match(result.stderr, /^hint: drop --from to take it from every other owner/m);
      },
    );

    await t.step("fetching your own file while its other owners are offline", async () => {
      // Bob shares it too, but does not serve; alice's own copy is no source.
      const both = join(dir.path, "both.txt");
      await Deno.writeTextFile(both, "shared by two\n");
      await bob.ok(["publish", "both", both]);
      await alice.ok(["publish", "both", both]);
      const result = await alice.run(["fetch", "both", "--output", join(dir.path, "both-out")]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        new RegExp(
          `^error: every other owner of "both" is offline; you share it yourself \\(yours is ` +
            `${RegExp.escape(both)}\\), and your own copy is no source$`,
          "m",
        ),
      );
      assert.match(result.stderr, /^hint: run it again once one of them serves/m);
    });

    await t.step("a shoal: link nobody publishes, and one only you share", async () => {
      const unknown = `shoal:${"0".repeat(64)}`;
      for (const command of ["fetch", "ls"]) {
        const result = await bob.run([command, unknown]);
        assert.equal(result.code, 1);
        assert.match(result.stderr, new RegExp(`^error: nobody publishes ${unknown}$`, "m"));
        assert.match(result.stderr, /^hint: check the link; its owner may have changed/m);
      }
      const mineOnly = join(dir.path, "mine-only.txt");
      await Deno.writeTextFile(mineOnly, `${crypto.randomUUID()}\n`);
      await alice.ok(["publish", "mine-only", mineOnly]);
      const [solo] = JSON.parse(await alice.ok(["view", "--json"]))
        .filter((share: { name: string }) => share.name === "mine-only");
      const own = await alice.run(["fetch", solo.link]);
      assert.equal(own.code, 1);
      assert.match(
        own.stderr,
        new RegExp(
          `^error: you are the only one sharing ${solo.link}; there is nobody to fetch it from$`,
          "m",
        ),
      );
    });

    await t.step("publishing a path through a file, or the root folder", async () => {
      const through = await alice.run(["publish", join(source, "x")]);
      assert.equal(through.code, 1);
      assert.match(through.stderr, /^error: no such file or folder: .*paper\.txt\/x$/m);
      assert.match(through.stderr, /^hint: a part of that path is a file, not a folder$/m);
      const root = await alice.run(["publish", "/"]);
      assert.equal(root.code, 1);
      assert.match(
        root.stderr,
        /^error: \/ is the whole file system; publish a folder inside it$/m,
      );
    });

    await t.step("publishing again by name, from a folder where no such path is", async () => {
      // (The program runs in this process, whose folder holds no `solo`.)
      const result = await alice.run(["publish", "solo"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^error: no such file or folder here: solo$/m);
      assert.match(
        result.stderr,
        new RegExp(
          `^hint: you share "solo" from ${RegExp.escape(source)}: \`.*publish solo ` +
            `${RegExp.escape(source)}\` publishes it again$`,
          "m",
        ),
      );
    });

    await t.step("fetching from an owner who does not share it", async () => {
      const result = await bob.run(["fetch", "paper.txt", "--from", "carol"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^error: carol does not share "paper\.txt"$/m);
      assert.match(result.stderr, /^hint: `.*search paper\.txt` shows who does$/m);
    });

    await t.step("saving into a folder that does not exist", async () => {
      const result = await bob.run(["fetch", "paper.txt", "--output", join(dir.path, "no", "x")]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /the folder .* does not exist/);
    });

    await t.step("an admin command on a database that does not exist", async () => {
      const result = await runTrackerCli(["peers", "--db", join(dir.path, "nope.db")]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /no tracker database at .*nope\.db/);
      assert.match(result.stderr, /^hint: .*pass --db FILE with the database its `serve` printed/m);
      // A relative path is shown resolved, so a wrong folder is plain to see.
      const relative = await runTrackerCli(["peers", "--db", "no-such-tracker.db"]);
      assert.match(
        relative.stderr,
        /no tracker database at no-such-tracker\.db \(\/.*\/no-such-tracker\.db\)/,
      );
      await assert.rejects(Deno.stat(join(dir.path, "nope.db")), Deno.errors.NotFound);
    });

    await t.step("pointing the peer at a peer's port instead of the tracker's", async () => {
      const confused = new CliPeer(bob.home, `127.0.0.1:${peerPort}`);
      const result = await confused.run(["search", "x"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /is a Shoal peer, not a tracker/);
    });

    const servers = [
      ["tracker", tracker.port, await Deno.readTextFile(`${db}.tls-cert.pem`)],
      ["peer", peerPort, await Deno.readTextFile(join(alice.home, "tls-cert.pem"))],
    ] as const;
    for (const [name, port, certificate] of servers) {
      await t.step(`random bytes and an oversized frame sent to the ${name}`, async () => {
        // Garbage where a TLS handshake should be, then garbage inside TLS.
        for (let i = 0; i < 5; i++) await sendRaw(port, randomBytes(64 + i * 500));
        for (let i = 0; i < 5; i++) await sendRaw(port, randomBytes(64 + i * 500), certificate);
        const reply = await sendRaw(port, OVERSIZED, certificate);
        assert.match(new TextDecoder().decode(reply), /FRAME_TOO_LARGE/);
        // Valid framing, but not a hello: refused with a reason.
        const json = new TextEncoder().encode(
          JSON.stringify({ id: 1, type: "lookup", params: {} }),
        );
        const frame = new Uint8Array([0, 0, 0, json.length, ...json]);
        assert.match(
          new TextDecoder().decode(await sendRaw(port, frame, certificate)),
          /first request must be hello/,
        );
        await fetchStillWorks();
      });
    }
  } finally {
    await serving[Symbol.asyncDispose]();
    await tracker.stop();
  }
});
