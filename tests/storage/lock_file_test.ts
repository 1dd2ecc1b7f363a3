/**
 * Reading the kernel's table of locks: a lock held on the file counts, one
 * only waited for or held on another file (or device) does not.
 */
import assert from "node:assert/strict";
import { heldInTable } from "../../lib/storage/lock_file.ts";

// The device 0xfe00 is major 0xfe, minor 0; 0x10000300 is major 3, minor 0x10000.
const TABLE = [
  "1: FLOCK  ADVISORY  WRITE 27846 fe:00:2146338 0 EOF",
  "1: -> FLOCK  ADVISORY  WRITE 27901 fe:00:777 0 EOF",
  "2: POSIX  ADVISORY  READ 27846 03:10000:555 128 128",
  "",
].join("\n");

Deno.test("heldInTable - a lock held on the file counts; a waiter, another inode or another device does not", () => {
  assert.equal(heldInTable(TABLE, 0xfe00, 2146338), true);
  assert.equal(heldInTable(TABLE, 0xfe00, 777), false);
  assert.equal(heldInTable(TABLE, 0xfe00, 214633), false);
  assert.equal(heldInTable(TABLE, 0xfe01, 2146338), false);
  assert.equal(heldInTable(TABLE, 0x10000300, 555), true);
  assert.equal(heldInTable(TABLE, 0x300, 555), false);
  assert.equal(heldInTable("", 0xfe00, 2146338), false);
});
