/**
 * Admission control for ClickHouse work: at most `concurrency` query slots are held at once in this process; other
 * requests wait in per-project FIFO queues served round-robin, so a project that floods the API waits behind its
 * own requests while other projects' requests are served in turn. A waiting request has a time budget; it is
 * refused at once (never after a long wait) when:
 *   - the queue already holds `maxQueue` requests            -> `queue_full`
 *   - its expected wait is longer than the budget            -> `expected_wait`
 *   - it is still waiting when the budget runs out           -> `wait_timeout`
 * Refusals carry a `retryAfterS` derived from the expected drain time of the work ahead.
 *
 * A request asks for `weight` slots (one per ClickHouse query it will run concurrently, capped at `concurrency`)
 * and holds them until it releases its permit. Service order is strict: the request whose turn it is waits for
 * enough free slots rather than letting lighter ones pass, so a heavy request cannot starve.
 *
 * The expected wait replays the service order with each request's kind's average hold time (a moving average
 * of completed ones) and the running requests' estimated remaining time.
 * The clock and timers are injected, so tests drive time by hand.
 */

export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns a cancel function. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

export const SHED_REASONS = ["queue_full", "expected_wait", "wait_timeout"] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

export class AdmissionRejected extends Error {
  override name = "AdmissionRejected";
  constructor(
    readonly reason: ShedReason,
    readonly retryAfterS: number,
  ) {
    super(`request shed: ${reason}`);
  }
}

/** The request gave up (client disconnected) while it was queued. */
export class AdmissionCancelled extends Error {
  override name = "AdmissionCancelled";
}

export interface AdmissionOptions {
  /** Slots (concurrent ClickHouse queries) this process runs at once. */
  concurrency: number;
  /** Most requests waiting at once, over all projects. */
  maxQueue: number;
  /** Longest time a request may wait for its slots, ms. */
  budgetMs: number;
  /**
   * Kinds that run long (funnels, breakdowns) and the most slots they may hold together: the other slots stay
   * for short queries, which then never wait behind a long one. Default: no limit.
   */
  heavyKinds?: readonly string[];
  maxHeavySlots?: number;
  clock?: Clock;
  /** Hold time assumed for a kind before any request of it completed, ms. */
  initialServiceMs?: Record<string, number>;
  /** Default for kinds without an initial estimate, ms. */
  defaultServiceMs?: number;
  /** Weight of the newest completed hold in the moving average (0..1]. */
  smoothing?: number;
  onAdmit?(kind: string, waitedMs: number): void;
  onShed?(kind: string, reason: ShedReason): void;
}

export interface Permit {
  /** Slots granted (the weight asked, capped at the concurrency). */
  readonly slots: number;
  readonly waitedMs: number;
  /** Gives the slots back; idempotent. */
  release(): void;
}

interface Waiter {
  project: number;
  kind: string;
  weight: number;
  enqueuedAt: number;
  grant(p: Permit): void;
  fail(err: Error): void;
  cancelTimer: () => void;
}

interface Running {
  kind: string;
  weight: number;
  startedAt: number;
}

interface Queued {
  kind: string;
  weight: number;
}

export class Admission {
  private readonly clock: Clock;
  private readonly queues = new Map<number, Waiter[]>();
  /** Projects with waiting requests, in service order; `turn` indexes the next one to serve. */
  private readonly ring: number[] = [];
  private turn = 0;
  private readonly running = new Set<Running>();
  private usedSlots = 0;
  private heavySlots = 0;
  private waiting = 0;
  private readonly serviceMs = new Map<string, number>();
  private readonly measured = new Set<string>();

  constructor(private readonly opts: AdmissionOptions) {
    if (!(Number.isInteger(opts.concurrency) && opts.concurrency >= 1)) throw new RangeError("concurrency must be an integer >= 1");
    this.clock = opts.clock ?? systemClock;
    for (const [k, ms] of Object.entries(opts.initialServiceMs ?? {})) this.serviceMs.set(k, ms);
  }

  private heavy(kind: string): boolean {
    return this.opts.heavyKinds?.includes(kind) ?? false;
  }

  private maxHeavy(): number {
    return Math.min(this.opts.maxHeavySlots ?? this.opts.concurrency, this.opts.concurrency);
  }

  /** Whether the heavy-slot cap lets this request start now (the total is checked apart). */
  private heavyFits(kind: string, weight: number): boolean {
    return !this.heavy(kind) || this.heavySlots + weight <= this.maxHeavy();
  }

  /** Requests waiting for slots. */
  get queued(): number {
    return this.waiting;
  }

  /** Slots held by running requests. */
  get slotsInUse(): number {
    return this.usedSlots;
  }

  /** Current average hold time of a kind, ms. */
  averageServiceMs(kind: string): number {
    return this.serviceMs.get(kind) ?? this.opts.defaultServiceMs ?? 500;
  }

  /**
   * Waits for `weight` slots for `project`; rejects with AdmissionRejected when the request is shed, with
   * AdmissionCancelled when `signal` aborts while it waits.
   */
  acquire(project: number, kind: string, weight = 1, signal?: AbortSignal): Promise<Permit> {
    const w = this.weightOf(kind, weight);
    const now = this.clock.now();
    if (this.waiting === 0 && this.usedSlots + w <= this.opts.concurrency && this.heavyFits(kind, w)) {
      return Promise.resolve(this.start(kind, w, now, now));
    }
    if (this.waiting >= this.opts.maxQueue) return Promise.reject(this.shed(kind, "queue_full", this.expectedWaitMs(project, w, now, kind)));
    const expected = this.expectedWaitMs(project, w, now, kind);
    if (expected > this.opts.budgetMs) return Promise.reject(this.shed(kind, "expected_wait", expected));
    if (signal?.aborted) return Promise.reject(new AdmissionCancelled("client went away"));

    return new Promise<Permit>((resolve, reject) => {
      const waiter: Waiter = {
        project,
        kind,
        weight: w,
        enqueuedAt: now,
        grant: resolve,
        fail: reject,
        cancelTimer: () => {},
      };
      const onAbort = () => {
        if (this.remove(waiter)) {
          reject(new AdmissionCancelled("client went away"));
          this.dispatch();
        }
      };
      waiter.cancelTimer = this.clock.setTimer(() => {
        if (this.remove(waiter)) {
          reject(this.shed(kind, "wait_timeout", this.expectedWaitMs(project, w, this.clock.now(), kind)));
          // Removing a waiter that blocked the head can let the next ones through.
          this.dispatch();
        }
      }, this.opts.budgetMs);
      if (signal) {
        signal.addEventListener("abort", onAbort, { once: true });
        const grant = waiter.grant;
        const fail = waiter.fail;
        waiter.grant = (p) => (signal.removeEventListener("abort", onAbort), grant(p));
        waiter.fail = (e) => (signal.removeEventListener("abort", onAbort), fail(e));
      }
      let q = this.queues.get(project);
      if (!q) {
        this.queues.set(project, (q = []));
        // A project that starts waiting joins at the end of the current round.
        this.ring.splice(this.turn, 0, project);
        this.turn = (this.turn + 1) % this.ring.length;
      }
      q.push(waiter);
      this.waiting++;
      // Slots may be free while only capped heavy requests wait: this one may start at once.
      this.dispatch();
    });
  }

  private weightOf(kind: string, weight: number): number {
    const cap = this.heavy(kind) ? this.maxHeavy() : this.opts.concurrency;
    return Math.max(1, Math.min(Math.floor(weight), cap));
  }

  /** Runs `fn` holding `weight` slots; the permit is released however `fn` ends. */
  async run<T>(project: number, kind: string, weight: number, fn: (permit: Permit) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const permit = await this.acquire(project, kind, weight, signal);
    try {
      return await fn(permit);
    } finally {
      permit.release();
    }
  }

  /**
   * Expected wait of a new request of `project` asking for `weight` slots, ms: the service order is replayed with
   * each request's kind's average hold time. Round-robin serves, before the new request, everything its own
   * project already queued and, from every other project, one request per round up to the new one's round.
   */
  expectedWaitMs(project: number, weight: number, now = this.clock.now(), kind = ""): number {
    const w = this.weightOf(kind, weight);
    // When each slot frees up: running requests' remaining estimated time, 0 for free slots; heavy requests
    // also hold one of the heavy lanes.
    const free: number[] = [];
    const heavyFree: number[] = [];
    for (const r of this.running) {
      const left = Math.max(0, this.averageServiceMs(r.kind) - (now - r.startedAt));
      for (let i = 0; i < r.weight; i++) free.push(left);
      if (this.heavy(r.kind)) for (let i = 0; i < r.weight; i++) heavyFree.push(left);
    }
    while (free.length < this.opts.concurrency) free.push(0);
    while (heavyFree.length < this.maxHeavy()) heavyFree.push(0);
    const startOf = (q: Queued, durationMs: number): number => {
      free.sort((a, b) => a - b);
      let start = free[q.weight - 1]!;
      if (this.heavy(q.kind)) {
        heavyFree.sort((a, b) => a - b);
        start = Math.max(start, heavyFree[q.weight - 1]!);
        for (let i = 0; i < q.weight; i++) heavyFree[i] = start + durationMs;
      }
      // It takes the slots freed last by `start`, leaving those freed earlier to requests that can use them.
      let last = free.length - 1;
      while (free[last]! > start) last--;
      for (let i = last; i > last - q.weight; i--) free[i] = start + durationMs;
      return start;
    };
    const self: Queued = { kind, weight: w };
    const own = this.queues.get(project)?.length ?? 0;
    const order = this.ring.length === 0 ? [] : [...this.ring.slice(this.turn), ...this.ring.slice(0, this.turn)];
    if (!this.queues.has(project)) order.push(project); // a new project joins at the end of the round
    for (let round = 0; round <= own; round++) {
      for (const p of order) {
        if (p === project && round === own) return startOf(self, 0);
        const next = this.queues.get(p)?.[round];
        if (next) startOf(next, this.averageServiceMs(next.kind));
      }
    }
    return startOf(self, 0);
  }

  private shed(kind: string, reason: ShedReason, expectedMs: number): AdmissionRejected {
    this.opts.onShed?.(kind, reason);
    // When to come back: once the work now queued has drained (at least 1 s, at most a minute).
    const drainS = Math.ceil(Math.max(expectedMs, this.totalQueuedWorkMs() / this.opts.concurrency) / 1000);
    return new AdmissionRejected(reason, Math.min(60, Math.max(1, drainS)));
  }

  private totalQueuedWorkMs(): number {
    let work = 0;
    for (const q of this.queues.values()) for (const w of q) work += w.weight * this.averageServiceMs(w.kind);
    return work;
  }

  private start(kind: string, weight: number, enqueuedAt: number, now: number): Permit {
    const r: Running = { kind, weight, startedAt: now };
    this.running.add(r);
    this.usedSlots += weight;
    if (this.heavy(kind)) this.heavySlots += weight;
    const waitedMs = now - enqueuedAt;
    this.opts.onAdmit?.(kind, waitedMs);
    let released = false;
    return {
      slots: weight,
      waitedMs,
      release: () => {
        if (released) return;
        released = true;
        this.running.delete(r);
        this.usedSlots -= weight;
        if (this.heavy(kind)) this.heavySlots -= weight;
        this.observe(kind, this.clock.now() - r.startedAt);
        this.dispatch();
      },
    };
  }

  private observe(kind: string, heldMs: number) {
    const a = this.opts.smoothing ?? 0.2;
    const prev = this.serviceMs.get(kind);
    // The first measurement replaces the configured guess outright.
    const first = !this.measured.has(kind);
    this.measured.add(kind);
    this.serviceMs.set(kind, prev === undefined || first ? heldMs : prev + a * (heldMs - prev));
  }

  /**
   * Grants slots to waiting requests in round-robin order over projects. A project's next request is its oldest
   * one the heavy-slot cap lets start (a waiting funnel does not hold up the trends queued behind it); when that
   * request needs more slots than are free, nobody passes it, so a heavy request cannot starve.
   */
  private dispatch() {
    for (;;) {
      if (this.ring.length === 0) return;
      if (this.turn >= this.ring.length) this.turn = 0;
      let granted = false;
      for (let k = 0; k < this.ring.length; k++) {
        const at = (this.turn + k) % this.ring.length;
        const project = this.ring[at]!;
        const q = this.queues.get(project)!;
        const i = q.findIndex((x) => this.heavyFits(x.kind, x.weight));
        if (i < 0) continue;
        const next = q[i]!;
        if (this.usedSlots + next.weight > this.opts.concurrency) return;
        q.splice(i, 1);
        this.waiting--;
        next.cancelTimer();
        if (q.length === 0) {
          this.queues.delete(project);
          this.ring.splice(at, 1);
          this.turn = at;
        } else {
          this.turn = at + 1;
        }
        next.grant(this.start(next.kind, next.weight, next.enqueuedAt, this.clock.now()));
        granted = true;
        break;
      }
      if (!granted) return;
    }
  }

  private remove(w: Waiter): boolean {
    const q = this.queues.get(w.project);
    const i = q?.indexOf(w) ?? -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    this.waiting--;
    w.cancelTimer();
    if (q.length === 0) {
      this.queues.delete(w.project);
      const at = this.ring.indexOf(w.project);
      this.ring.splice(at, 1);
      if (at < this.turn) this.turn--;
    }
    return true;
  }
}
