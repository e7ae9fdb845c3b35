/**
 * An HTTP proxy in front of a real server (ClickHouse) that a test can take down and bring back: down, its port
 * refuses connections, exactly as a stopped server's would; up, it forwards every request unchanged. The fault
 * injector for outages of a shared service that must not really be stopped.
 */
import type { Server } from "bun";
import { freePort } from "./stack.ts";

export class FaultProxy {
  readonly port = freePort();
  readonly url = `http://127.0.0.1:${this.port}`;
  private server: Server<undefined> | undefined;

  /**
   * `answer`, when given, sees each request's body first and may answer in the server's place (a ClickHouse
   * error for certain rows, say); undefined forwards the request.
   */
  constructor(
    private readonly target: string,
    private readonly answer?: (body: string) => Response | undefined,
  ) {
    this.up();
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  up(): void {
    if (this.server) return;
    const target = this.target;
    const answer = this.answer;
    this.server = Bun.serve({
      port: this.port,
      hostname: "127.0.0.1",
      idleTimeout: 0,
      async fetch(req) {
        const u = new URL(req.url);
        let body: ReadableStream<Uint8Array> | string | null = req.body;
        if (answer && body) {
          const text = await req.text();
          const own = answer(text);
          if (own) return own;
          body = text;
        }
        const res = await fetch(`${target}${u.pathname}${u.search}`, { method: req.method, headers: req.headers, body, redirect: "manual" });
        return new Response(res.body, { status: res.status, headers: res.headers });
      },
    });
  }

  /** Closes the listening socket and every open connection: new requests are refused. */
  down(): void {
    this.server?.stop(true);
    this.server = undefined;
  }
}
