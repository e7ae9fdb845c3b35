/**
 * At most one log line per key per interval: a failure that repeats every few milliseconds (a retry loop, a
 * stream of rejected rows) logs its first occurrence and then a line per interval saying how many were left out.
 */
export class LogRateLimit {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether to log now; when true, `suppressed` is how many calls for this key were skipped since the last line. */
  allow(key: string): { suppressed: number } | null {
    const t = this.now();
    const s = this.last.get(key);
    if (s && t - s.at < this.intervalMs) {
      s.suppressed++;
      return null;
    }
    const suppressed = s?.suppressed ?? 0;
    this.last.set(key, { at: t, suppressed: 0 });
    return { suppressed };
  }
}
