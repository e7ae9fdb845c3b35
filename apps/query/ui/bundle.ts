/**
 * Builds the insights page: the browser code (ui/src, plain TypeScript + uPlot) bundled and minified by Bun.build,
 * the stylesheet (uPlot's + ours), the HTML shell, each also gzipped once. No toolchain beyond Bun; the query app
 * builds it at start-up, in memory.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";

export interface Asset {
  body: Uint8Array<ArrayBuffer>;
  gzip: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

export interface InsightsPage {
  html: Asset;
  js: Asset;
  css: Asset;
}

const UI = import.meta.dir;

function asset(body: Uint8Array<ArrayBuffer>, type: string): Asset {
  return { body, gzip: Bun.gzipSync(body, { level: 9 }), type, etag: `"${Bun.hash(body).toString(36)}"` };
}

export async function buildInsightsPage(): Promise<InsightsPage> {
  const built = await Bun.build({ entrypoints: [join(UI, "src/main.ts")], target: "browser", format: "esm", minify: true, sourcemap: "none" });
  if (!built.success) throw new AggregateError(built.logs, "insights page bundle failed");
  const js = built.outputs.find((o) => o.kind === "entry-point");
  if (!js) throw new Error("insights page bundle produced no entry point");
  const uplotCss = createRequire(import.meta.url).resolve("uplot/dist/uPlot.min.css");
  const css = (await readFile(uplotCss, "utf8")) + "\n" + (await readFile(join(UI, "styles.css"), "utf8"));
  const html = await readFile(join(UI, "index.html"));
  const enc = new TextEncoder();
  return {
    html: asset(new Uint8Array(html), "text/html; charset=utf-8"),
    js: asset(new Uint8Array(await js.arrayBuffer()), "text/javascript; charset=utf-8"),
    css: asset(enc.encode(css), "text/css; charset=utf-8"),
  };
}
