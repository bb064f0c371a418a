#!/usr/bin/env node
// A slice allocator written in JavaScript (Node.js, standard library only),
// plugged into the memslice conformance suite with
//
//     memslice-conformance validate-protocol --impl "cmd:node docs/howto/examples/slice.js"
//     memslice-conformance run --impl "cmd:node docs/howto/examples/slice.js"
//
// Theory of operation
// -------------------
// It speaks memslice-jsonl v1 (conformance/memslice_conformance/schema/
// protocol-v1.json): one JSON request per line on stdin, one response per
// line on stdout, in request order.  Memory is simulated: one Buffer stands
// for an address space that starts at BASE, so an address is BASE + offset.
//
//     BASE                                                      BASE + top
//     | page: 16 B chunks | page: 48 B chunks | big block | ... |  (grows)
//       `- free list of class 16: [a, b, ...]  (LIFO, like a magazine)
//
// Small sizes (<= MAX_SMALL) round up to a 16-byte chunk size (one size
// class per multiple of 16, API-012 alignment); a class with an empty free
// list carves a whole PAGE of chunks at once (a crude slab, SLAB-*), and a
// free pushes the chunk back on its class's list.  Larger sizes get their
// own block carved from the top, recycled through a list per exact chunk
// size (the "malloc path", LARGE-*).
//
// Invariants: every live block is in `live` (address -> chunk size) and in
// no free list; a freed address is on exactly one free list.  A free of an
// address that is not live, or with a size of another chunk size (API-013),
// is answered with an error instead of corrupting the lists.
//
// Threads: Node runs this on one thread, so `thread` names are accepted and
// every op runs in the order sent, which the protocol allows (rule 1); a
// thread_exit has nothing to return, since nothing is cached per thread.
// Configuration: get_config answers GLib's defaults (CONF-002, CONF-010);
// set_config is stored only before the first allocation (CONF-004);
// get_config_state answers NULL for every key (CONF-010 and CONF-011 allow
// it for CONTENTION_COUNTER, as GLib 2.76 does).
"use strict";

const readline = require("node:readline");

const BASE = 2 ** 40; // first address handed out; never 0 (NULL); 16-aligned
const ALIGN = 16;
const MAX_SMALL = 1008; // GLib 2.74's largest slab chunk on 4 KiB pages
const PAGE = 4096;

let memory = Buffer.alloc(1 << 20); // grows by doubling as pages are carved
let top = 0; // bytes of `memory` handed out so far
const freeLists = new Map(); // chunk size -> [address, ...]
const live = new Map(); // address -> chunk size
let used = false; // any allocation yet? (set_config is ignored after it)

// GSliceConfig keys 1..6 (CONF-002) with GLib 2.74's defaults.
const config = new Map([
  [1, 0], // ALWAYS_MALLOC
  [2, 0], // BYPASS_MAGAZINES
  [3, 15000], // WORKING_SET_MSECS
  [4, 1], // COLOR_INCREMENT
  [5, MAX_SMALL / ALIGN], // CHUNK_SIZES: number of small classes (63)
  [6, 0], // CONTENTION_COUNTER
]);

class SliceError extends Error {}

function chunkSize(size) {
  return Math.ceil(size / ALIGN) * ALIGN;
}

function carve(bytes) {
  const offset = top;
  top += bytes;
  if (top > memory.length) {
    let length = memory.length;
    while (top > length) length *= 2;
    const bigger = Buffer.alloc(length);
    memory.copy(bigger, 0, 0, offset);
    memory = bigger;
  }
  return BASE + offset;
}

function listFor(chunk) {
  let list = freeLists.get(chunk);
  if (list === undefined) {
    list = [];
    freeLists.set(chunk, list);
  }
  return list;
}

function alloc(size) {
  if (size === 0) return 0; // NULL if and only if the size is 0 (API-001)
  if (size < 0) throw new SliceError(`negative size ${size}`);
  used = true;
  const chunk = chunkSize(size);
  const list = listFor(chunk);
  if (list.length === 0) {
    if (chunk <= MAX_SMALL) {
      // A fresh page of chunks, pushed so that the lowest address comes first.
      const count = Math.floor(PAGE / chunk);
      const page = carve(count * chunk);
      for (let i = count - 1; i >= 0; i--) list.push(page + i * chunk);
    } else {
      list.push(carve(chunk));
    }
  }
  const addr = list.pop();
  live.set(addr, chunk);
  return addr;
}

function offsetOf(addr, length) {
  const offset = addr - BASE;
  if (!Number.isSafeInteger(addr) || offset < 0 || offset + length > top) {
    throw new SliceError(`address ${addr} (+${length} bytes) is outside the arena`);
  }
  return offset;
}

function put(addr, bytes) {
  bytes.copy(memory, offsetOf(addr, bytes.length));
}

function get(addr, length) {
  const offset = offsetOf(addr, length);
  return Buffer.from(memory.subarray(offset, offset + length));
}

function free1(size, addr) {
  if (addr === 0) return; // freeing NULL does nothing (API-007)
  const chunk = live.get(addr);
  if (chunk === undefined) throw new SliceError(`free of ${addr}: not a live block`);
  if (chunk !== chunkSize(size)) {
    throw new SliceError(`free of ${addr} with size ${size}: it was allocated as ${chunk} B`);
  }
  live.delete(addr);
  listFor(chunk).push(addr);
}

function freeChain(size, head, nextOffset) {
  let node = head;
  while (node !== 0) {
    // Read the link before the node is freed (API-008): 8 bytes, little-endian.
    const next = Number(get(node + nextOffset, 8).readBigUInt64LE(0));
    free1(size, node);
    node = next;
  }
}

const OPS = {
  hello: () => ({
    protocol: "memslice-jsonl",
    version: 1,
    implementation: "node-example",
    profiles: ["core"],
  }),
  alloc: (r) => alloc(r.size),
  alloc0: (r) => {
    const addr = alloc(r.size);
    if (addr !== 0) put(addr, Buffer.alloc(r.size)); // recycled chunks hold old bytes
    return addr;
  },
  copy: (r) => {
    if (r.size === 0) return 0;
    const bytes = get(r.src, r.size); // read before allocating: src may be anywhere
    const addr = alloc(r.size);
    put(addr, bytes);
    return addr;
  },
  free1: (r) => free1(r.size, r.addr),
  free_chain_with_offset: (r) => freeChain(r.size, r.head, r.next_offset),
  write: (r) => put(r.addr, Buffer.from(r.data, "hex")),
  read: (r) => get(r.addr, r.size).toString("hex"),
  set_config: (r) => {
    if (!used && r.key >= 1 && r.key <= 4) config.set(r.key, r.value);
  },
  get_config: (r) => config.get(r.key) ?? 0, // unknown keys read 0 (CONF-010)
  get_config_state: () => null,
  thread_exit: (r) => {
    if (r.thread === "main") throw new SliceError("the main thread cannot exit");
  },
  shutdown: () => null,
};

function answer(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    return { response: fail(null, "ProtocolError", `not JSON: ${error.message}`), stop: false };
  }
  const id = Number.isInteger(request.id) ? request.id : null;
  const op = Object.hasOwn(OPS, request.op) ? OPS[request.op] : undefined;
  if (op === undefined) {
    return { response: fail(id, "ProtocolError", `unknown op ${request.op}`), stop: false };
  }
  const thread = typeof request.thread === "string" ? request.thread : "main";
  try {
    const result = op({ ...request, thread });
    return { response: { id, ok: true, result: result ?? null }, stop: request.op === "shutdown" };
  } catch (error) {
    const type = error instanceof SliceError ? "SliceError" : error.name;
    return { response: fail(id, type, error.message), stop: false };
  }
}

function fail(id, type, message) {
  return { id, ok: false, error: { type, message } };
}

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on("line", (line) => {
  if (line.trim() === "") return;
  const { response, stop } = answer(line);
  const text = JSON.stringify(response) + "\n";
  if (stop) {
    input.close();
    process.stdout.write(text, () => process.exit(0));
  } else {
    process.stdout.write(text);
  }
});
