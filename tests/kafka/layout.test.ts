/**
 * Every struct offset and constant pinned in lib/kafka (librdkafka.ts, metadata.ts) checked against rdkafka.h:
 * a small C program compiled with `cc` against the header prints offsetof/sizeof and the constants' values, and
 * each pinned value must equal the header's. Two headers: the native stack's (/usr/include, Debian bookworm's
 * librdkafka-dev 2.0.2) and the Docker image's (trixie's librdkafka-dev 2.8.0, fetched by apt into a scratch
 * directory under the state folder), because lib/kafka reads the same layout in both.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScratchApt } from "../../infrastructure/compose-check/debian-apt.ts";
import * as rk from "../../lib/kafka/librdkafka.ts";
import { METADATA, METADATA_TOPIC } from "../../lib/kafka/metadata.ts";
import { ROOT } from "../support/stack.ts";

const STATE = process.env.INGEST_STATE_DIR ?? join(ROOT, ".local");
const HEADER = "/usr/include/librdkafka/rdkafka.h";

const STRUCTS: [label: string, ctype: string, layout: Record<string, number>, sizeIsField?: boolean][] = [
  ["MSG", "rd_kafka_message_t", rk.MSG],
  ["TOPPAR", "rd_kafka_topic_partition_t", rk.TOPPAR],
  ["TOPPAR_LIST", "rd_kafka_topic_partition_list_t", rk.TOPPAR_LIST, true],
  ["METADATA", "struct rd_kafka_metadata", METADATA],
  ["METADATA_TOPIC", "rd_kafka_metadata_topic_t", METADATA_TOPIC],
];

/** Pinned numeric constants named RD_KAFKA_* in librdkafka.ts, by their C names. */
function pinnedConstants(): Map<string, number | bigint> {
  const out = new Map<string, number | bigint>();
  for (const [name, value] of Object.entries(rk)) {
    if (name.startsWith("RD_KAFKA_") && (typeof value === "number" || typeof value === "bigint")) out.set(name, value);
  }
  for (const [name, value] of Object.entries(rk.ERR)) out.set(`RD_KAFKA_RESP_ERR_${name}`, value);
  for (const [name, value] of Object.entries(rk.VTYPE)) out.set(`RD_KAFKA_VTYPE_${name}`, value);
  return out;
}

function probeSource(constants: string[]): string {
  const lines: string[] = [];
  const emit = (label: string, expr: string) => lines.push(`  printf("%s=%lld\\n", "${label}", (long long)(${expr}));`);
  for (const [label, ctype, layout, sizeIsField] of STRUCTS) {
    for (const field of Object.keys(layout)) {
      emit(`${label}.${field}`, field === "size" && !sizeIsField ? `sizeof(${ctype})` : `offsetof(${ctype}, ${field})`);
    }
  }
  emit("TOPPAR_LIST.sizeof", "sizeof(rd_kafka_topic_partition_list_t)");
  // rd_kafka_vu_t: the union `u` and its size.
  emit("VU.vtype", "offsetof(rd_kafka_vu_t, vtype)");
  emit("VU.u", "offsetof(rd_kafka_vu_t, u)");
  emit("VU.size", "sizeof(rd_kafka_vu_t)");
  emit("VU.u.size", "sizeof(((rd_kafka_vu_t *)0)->u)");
  emit("VU.u.mem.ptr", "offsetof(rd_kafka_vu_t, u.mem.ptr)");
  emit("VU.u.mem.size", "offsetof(rd_kafka_vu_t, u.mem.size)");
  emit("VU.u.header.name", "offsetof(rd_kafka_vu_t, u.header.name)");
  emit("VU.u.header.val", "offsetof(rd_kafka_vu_t, u.header.val)");
  emit("VU.u.header.size", "offsetof(rd_kafka_vu_t, u.header.size)");
  emit("VU.u.ptr", "offsetof(rd_kafka_vu_t, u.ptr)");
  emit("VU.u.i32", "offsetof(rd_kafka_vu_t, u.i32)");
  // Widths the FFI signatures assume.
  emit("sizeof.rd_kafka_resp_err_t", "sizeof(rd_kafka_resp_err_t)");
  emit("sizeof.size_t", "sizeof(size_t)");
  emit("sizeof.ptr", "sizeof(void *)");
  emit("sizeof.ssize_t", "sizeof(ssize_t)");
  emit("RD_KAFKA_VERSION", "RD_KAFKA_VERSION");
  for (const c of constants) emit(c, c);
  return `#include <stddef.h>\n#include <stdio.h>\n#include <sys/types.h>\n#include <librdkafka/rdkafka.h>\nint main(void) {\n${lines.join("\n")}\n  return 0;\n}\n`;
}

const constants = pinnedConstants();
let dir = "";

/** Compiles the probe against `<includeDir>/librdkafka/rdkafka.h` and returns what it prints. */
function probe(includeDir: string): Map<string, bigint> {
  const header = new Map<string, bigint>();
  const work = mkdtempSync(join(dir, "probe-"));
  writeFileSync(join(work, "probe.c"), probeSource([...constants.keys()]));
  // Only the header is needed: the probe never calls into the library, so it is not linked against it.
  const cc = Bun.spawnSync(["cc", "-std=gnu11", "-Wall", "-Werror", "-nostdinc", "-isystem", includeDir, ...systemIncludes(), "-o", join(work, "probe"), join(work, "probe.c")], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`cc failed:\n${cc.stderr.toString()}`);
  const run = Bun.spawnSync([join(work, "probe")], { stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`probe failed: ${run.stderr.toString()}`);
  for (const line of run.stdout.toString().trim().split("\n")) {
    const eq = line.lastIndexOf("=");
    header.set(line.slice(0, eq), BigInt(line.slice(eq + 1)));
  }
  return header;
}

/** cc's own include path, so `-nostdinc` + `-isystem <dir>` puts the chosen rdkafka.h first and nothing else changes. */
function systemIncludes(): string[] {
  const out = Bun.spawnSync(["cc", "-E", "-Wp,-v", "-x", "c", "/dev/null"], { stdout: "pipe", stderr: "pipe" }).stderr.toString();
  const dirs = out.split("\n").filter((l) => l.startsWith(" /")).map((l) => l.trim());
  return dirs.flatMap((d) => ["-isystem", d]);
}

const HEADERS: { label: string; include: () => string; loaded: boolean }[] = [
  {
    label: "native stack: /usr/include (librdkafka-dev of this Debian)",
    include: () => {
      if (!(Bun.file(HEADER).size > 0)) throw new Error(`${HEADER} missing: install the Debian package librdkafka-dev (make deps)`);
      return "/usr/include";
    },
    loaded: true,
  },
  {
    label: "Docker image: trixie's librdkafka-dev",
    include: () => {
      const apt = new ScratchApt(STATE, { suite: "trixie" });
      apt.update();
      const out = join(dir, "trixie");
      mkdirSync(out);
      const x = Bun.spawnSync(["dpkg-deb", "-x", apt.download("librdkafka-dev"), out], { stderr: "pipe" });
      if (x.exitCode !== 0) throw new Error(`dpkg-deb -x failed: ${x.stderr.toString()}`);
      return join(out, "usr/include");
    },
    loaded: false,
  },
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rdkafka-layout-"));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

for (const h of HEADERS) {
  describe(h.label, () => {
    const header = new Map<string, bigint>();
    beforeAll(() => {
      for (const [k, v] of probe(h.include())) header.set(k, v);
    }, 120_000);

    const fromHeader = (label: string): number => {
      const v = header.get(label);
      if (v === undefined) throw new Error(`probe did not print ${label}`);
      return Number(v);
    };

    describe("struct layouts pinned in lib/kafka match rdkafka.h", () => {
      for (const [label, ctype, layout] of STRUCTS) {
        test(`${label} = ${ctype}`, () => {
          const pinned = Object.fromEntries(Object.entries(layout));
          const actual = Object.fromEntries(Object.keys(layout).map((f) => [f, fromHeader(`${label}.${f}`)]));
          expect(pinned).toEqual(actual);
        });
      }

      test("VU = rd_kafka_vu_t (vtype, then a union the produceva code fills as 8-byte words)", () => {
        const pinned: Record<string, number> = { vtype: rk.VU.vtype, u: rk.VU.u, size: rk.VU.size };
        expect(pinned).toEqual({
          vtype: fromHeader("VU.vtype"),
          u: fromHeader("VU.u"),
          size: fromHeader("VU.size"),
        });
        expect(rk.VU.u + fromHeader("VU.u.size")).toBe(rk.VU.size);
        // producer.ts writes VALUE/KEY as (ptr, size), HEADER as (name, val, size), RKT/OPAQUE as one pointer and
        // MSGFLAGS as an int at the start of the union (little-endian).
        const u = rk.VU.u;
        expect([fromHeader("VU.u.mem.ptr"), fromHeader("VU.u.mem.size")]).toEqual([u, u + 8]);
        expect([fromHeader("VU.u.header.name"), fromHeader("VU.u.header.val"), fromHeader("VU.u.header.size")]).toEqual([u, u + 8, u + 16]);
        expect([fromHeader("VU.u.ptr"), fromHeader("VU.u.i32")]).toEqual([u, u]);
      });

      test("rd_kafka_topic_partition_list_t is {cnt, size, elems} and nothing more", () => {
        expect(fromHeader("TOPPAR_LIST.sizeof")).toBe(rk.TOPPAR_LIST.elems + 8);
      });

      test("scalar widths assumed by the FFI signatures (LP64)", () => {
        expect(fromHeader("sizeof.rd_kafka_resp_err_t")).toBe(4);
        expect(fromHeader("sizeof.size_t")).toBe(8);
        expect(fromHeader("sizeof.ptr")).toBe(8);
        expect(fromHeader("sizeof.ssize_t")).toBe(8);
      });
    });

    describe("constants pinned in lib/kafka match rdkafka.h", () => {
      test("the pinned set is the one producer/consumer use", () => {
        for (const c of ["RD_KAFKA_MSG_F_COPY", "RD_KAFKA_PARTITION_UA", "RD_KAFKA_EVENT_DR", "RD_KAFKA_OFFSET_INVALID", "RD_KAFKA_RESP_ERR__MSG_TIMED_OUT", "RD_KAFKA_VTYPE_HEADER"]) {
          expect(constants.has(c)).toBe(true);
        }
        expect(constants.size).toBeGreaterThan(40);
      });

      for (const [name, value] of constants) {
        test(`${name} = ${value}`, () => {
          expect(BigInt(value)).toBe(header.get(name)!);
        });
      }
    });

    if (h.loaded) {
      test("the loaded librdkafka is the release rdkafka.h describes", () => {
        // RD_KAFKA_VERSION is 0xMMmmrrpp; compare major.minor.revision with rd_kafka_version_str() of the loaded library.
        const v = fromHeader("RD_KAFKA_VERSION");
        const fromHdr = `${(v >>> 24) & 0xff}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}`;
        if (process.env.LIBRDKAFKA_PATH) {
          console.warn(`LIBRDKAFKA_PATH set: library ${rk.librdkafkaVersion()}, header ${fromHdr}; layouts checked against the header only`);
          return;
        }
        expect(rk.librdkafkaVersion()).toStartWith(fromHdr);
      });
    } else {
      test("the header is a different release from the native one (else this block proves nothing new)", () => {
        const v = fromHeader("RD_KAFKA_VERSION");
        expect(`${(v >>> 24) & 0xff}.${(v >>> 16) & 0xff}`).not.toBe(rk.librdkafkaVersion().split(".").slice(0, 2).join("."));
      });
    }
  });
}
