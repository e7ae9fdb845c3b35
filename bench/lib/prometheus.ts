/** Reading figures out of a Prometheus text exposition (an app's /metrics), for the benchmarks. */

/** The sample of `name`, summed over its label sets; NaN when the exposition has none. */
export function metricValue(text: string, name: string): number {
  let sum = 0;
  let found = false;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
      found = true;
    }
  }
  return found ? sum : Number.NaN;
}
