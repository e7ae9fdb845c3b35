/**
 * HTTP request -> CaptureInput, before the pipeline: the body read under the route's byte cap (a declared
 * Content-Length over the cap is refused before reading; a chunked body is counted as it streams), the hints
 * the decoder needs, the client address and the clock.
 */
import type { Context } from "hono";
import type { CaptureInput } from "./capture-context.ts";
import { CaptureError } from "./capture-error.ts";

const EMPTY = new Uint8Array(0);

export interface RequestOptions {
  maxBytes: number;
  captureIp: boolean;
  /** Take the client address from X-Forwarded-For (only behind a proxy that sets it). */
  trustProxy: boolean;
  nowMs: number;
}

export async function buildCaptureInput(c: Context, opts: RequestOptions): Promise<CaptureInput> {
  const req = c.req.raw;
  const url = new URL(req.url);
  const q = url.searchParams;
  const body = req.method === "GET" || req.method === "HEAD" ? EMPTY : await readBodyCapped(req, opts.maxBytes);
  return {
    body,
    hints: {
      contentType: req.headers.get("content-type")?.toLowerCase() ?? "",
      contentEncoding: req.headers.get("content-encoding")?.toLowerCase() ?? "",
      compression: q.get("compression")?.toLowerCase() ?? undefined,
      queryData: q.get("data") ?? undefined,
    },
    maxBytes: opts.maxBytes,
    querySentAt: q.get("_") ?? undefined,
    clientIp: opts.captureIp ? clientAddress(c, opts.trustProxy) : "",
    nowMs: opts.nowMs,
  };
}

export async function readBodyCapped(req: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    const n = Number(declared);
    if (n > maxBytes) throw new CaptureError("request_too_large", `body of ${n} bytes exceeds ${maxBytes}`);
    if (n === 0) return EMPTY;
    return new Uint8Array(await req.arrayBuffer());
  }
  if (!req.body) return EMPTY;
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new CaptureError("request_too_large", `body exceeds ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

interface AddressSource {
  requestIP?(req: Request): { address: string } | null;
}

export function clientAddress(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header("x-forwarded-for");
    if (forwarded) return forwarded.split(",")[0]!.trim();
  }
  // Under Bun.serve, Hono's env is the Server; in-process tests (app.request) have none.
  const server = c.env as AddressSource | undefined;
  return server?.requestIP?.(c.req.raw)?.address ?? "";
}
