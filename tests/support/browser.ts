/**
 * Headless Chromium for browser tests: Debian's `chromium` (installed by `make deps`) started by us with a fixed
 * set of flags and a fresh profile, driven by playwright-core over the DevTools protocol (connectOverCDP).
 *
 * Why we start the process ourselves instead of `chromium.launch()`: playwright's launch adds its own flags and
 * refuses `--user-data-dir`; here every flag is ours and visible. The flags keep the browser from reaching the
 * network on its own (no background networking, component updates, sync or QUIC), so a test only talks to the
 * loopback servers it started.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
] as const;

export interface LaunchedBrowser {
  browser: Browser;
  /** Everything Chromium wrote to stderr (crash reasons land here). */
  output: () => string;
  /** Closes the browser, ends the process and removes the profile. Safe to call twice. */
  close: () => Promise<void>;
}

export async function launchBrowser(opts: { timeoutMs?: number; extraFlags?: string[] } = {}): Promise<LaunchedBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "ingest-chromium-"));
  const proc = Bun.spawn(
    [CHROMIUM, ...CHROMIUM_FLAGS, ...(opts.extraFlags ?? []), `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank"],
    { stdout: "ignore", stderr: "pipe" },
  );
  let stderr = "";
  // Chromium prints "DevTools listening on ws://127.0.0.1:<port>/devtools/browser/<id>" once it is ready.
  const endpoint = new Promise<string>((resolve, reject) => {
    void (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
        stderr += dec.decode(chunk);
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      }
      reject(new Error(`chromium exited (${await proc.exited}) before DevTools listened:\n${stderr.slice(-2000)}`));
    })();
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    proc.kill("SIGTERM");
    await proc.exited;
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const ws = await Promise.race([
      endpoint,
      Bun.sleep(timeoutMs).then(() => Promise.reject(new Error(`chromium did not start within ${timeoutMs} ms:\n${stderr.slice(-2000)}`))),
    ]);
    const browser = await chromium.connectOverCDP(ws);
    return {
      browser,
      output: () => stderr,
      close: async () => {
        await browser.close().catch(() => {});
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
