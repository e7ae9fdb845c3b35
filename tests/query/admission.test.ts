/** The admission queue alone, on a hand-driven clock: slots, round-robin fairness, the three ways to be shed. */
import { describe, expect, test } from "bun:test";
import { Admission, AdmissionCancelled, AdmissionRejected, type Clock, type Permit } from "../../apps/query/admission.ts";

class ManualClock implements Clock {
  t = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now = () => this.t;
  setTimer(fn: () => void, ms: number) {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return () => void (timer.live = false);
  }
  /** Moves time forward, firing due timers in order. */
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = due.at;
      due.live = false;
      due.fn();
    }
    this.t = end;
  }
}

/** Lets promise callbacks run (grants resolve through the microtask queue). */
const settle = () => new Promise((r) => setImmediate(r));

function setup(opts: Partial<ConstructorParameters<typeof Admission>[0]> = {}) {
  const clock = new ManualClock();
  const shed: string[] = [];
  const admitted: { kind: string; waited: number }[] = [];
  const a = new Admission({
    concurrency: 2,
    maxQueue: 100,
    budgetMs: 1000,
    clock,
    initialServiceMs: { trend: 100, funnel: 400 },
    onShed: (kind, reason) => shed.push(`${kind}:${reason}`),
    onAdmit: (kind, waited) => admitted.push({ kind, waited }),
    ...opts,
  });
  return { a, clock, shed, admitted };
}

/** Acquires and records the order in which permits are granted. */
function track(a: Admission, order: string[], label: string, project: number, kind = "trend", weight = 1, signal?: AbortSignal) {
  const p = a.acquire(project, kind, weight, signal);
  const out: { permit?: Permit; error?: Error; promise: Promise<unknown> } = { promise: p };
  out.promise = p.then(
    (permit) => {
      order.push(label);
      out.permit = permit;
    },
    (err: Error) => {
      out.error = err;
    },
  );
  return out;
}

describe("admission", () => {
  test("grants up to the concurrency at once, queues the rest, and a release admits the next", async () => {
    const { a, clock, admitted } = setup();
    const order: string[] = [];
    const r1 = track(a, order, "1", 1);
    const r2 = track(a, order, "2", 1);
    const r3 = track(a, order, "3", 1);
    await settle();
    expect(order).toEqual(["1", "2"]);
    expect(a.slotsInUse).toBe(2);
    expect(a.queued).toBe(1);
    clock.advance(80);
    r1.permit!.release();
    r1.permit!.release(); // idempotent
    await settle();
    expect(order).toEqual(["1", "2", "3"]);
    expect(a.queued).toBe(0);
    expect(admitted.map((x) => x.waited)).toEqual([0, 0, 80]);
    r2.permit!.release();
    r3.permit!.release();
    expect(a.slotsInUse).toBe(0);
  });

  test("projects are served round-robin: a project's backlog does not delay another's request", async () => {
    const { a } = setup({ concurrency: 1, initialServiceMs: { trend: 10 } });
    const order: string[] = [];
    const first = track(a, order, "A0", 1);
    const as = [1, 2, 3, 4].map((i) => track(a, order, `A${i}`, 1));
    const b = track(a, order, "B1", 2);
    const c = track(a, order, "C1", 3);
    await settle();
    const all = [first, ...as, b, c];
    for (let i = 0; i < all.length; i++) {
      const holder = all.find((x) => x.permit && !(x as { done?: boolean }).done);
      (holder as { done?: boolean }).done = true;
      holder!.permit!.release();
      await settle();
    }
    expect(order).toEqual(["A0", "A1", "B1", "C1", "A2", "A3", "A4"]);
  });

  test("a request whose expected wait exceeds the budget is refused at once, with a Retry-After", async () => {
    const { a, shed } = setup({ budgetMs: 1000 });
    const order: string[] = [];
    // Two funnels running (400 ms each left), then queued funnels: 2 x 400 ms of work ahead per slot pair.
    track(a, order, "f1", 1, "funnel");
    track(a, order, "f2", 1, "funnel");
    for (let i = 0; i < 4; i++) track(a, order, `q${i}`, 1, "funnel");
    await settle();
    // Slots free at 400 ms (the running two), then 800 ms (q0, q1), then 1200 ms (q2, q3) > 1000.
    expect(a.expectedWaitMs(1, 1)).toBe(1200);
    const err = await a.acquire(1, "funnel").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdmissionRejected);
    expect((err as AdmissionRejected).reason).toBe("expected_wait");
    expect((err as AdmissionRejected).retryAfterS).toBe(2);
    expect(shed).toEqual(["funnel:expected_wait"]);
  });

  test("another project's request is still admitted while one project floods (fair shedding)", async () => {
    const { a, shed } = setup({ budgetMs: 1000 });
    const order: string[] = [];
    track(a, order, "run1", 1, "funnel");
    track(a, order, "run2", 1, "funnel");
    const flood = Array.from({ length: 10 }, (_, i) => track(a, order, `A${i}`, 1, "funnel"));
    await settle();
    // Project 1 got as far as its budget allows; the rest of its flood is refused.
    const refused = flood.filter((r) => r.error instanceof AdmissionRejected).length;
    expect(refused).toBeGreaterThan(0);
    expect(a.queued).toBe(10 - refused);
    // Project 2 only waits for one of project 1's requests: it takes the slot freed at 400 ms, the other is next.
    expect(a.expectedWaitMs(2, 1)).toBe(400);
    const b = track(a, order, "B", 2, "funnel");
    await settle();
    expect(b.error).toBeUndefined();
    expect(shed.every((s) => s === "funnel:expected_wait")).toBe(true);
  });

  test("a request still waiting when its budget ends is refused then, and the queue moves on", async () => {
    const { a, clock, shed } = setup({ budgetMs: 500, initialServiceMs: { trend: 100 } });
    const order: string[] = [];
    const h1 = track(a, order, "1", 1);
    const h2 = track(a, order, "2", 1);
    const w = track(a, order, "w", 1);
    await settle();
    clock.advance(499);
    await settle();
    expect(w.error).toBeUndefined();
    clock.advance(1);
    await settle();
    expect(w.error).toBeInstanceOf(AdmissionRejected);
    expect((w.error as AdmissionRejected).reason).toBe("wait_timeout");
    expect(shed).toEqual(["trend:wait_timeout"]);
    expect(a.queued).toBe(0);
    h1.permit!.release();
    h2.permit!.release();
    expect(a.slotsInUse).toBe(0);
  });

  test("a full queue refuses at once", async () => {
    const { a, shed } = setup({ concurrency: 1, maxQueue: 2, initialServiceMs: { trend: 1 } });
    const order: string[] = [];
    track(a, order, "run", 1);
    track(a, order, "q1", 2);
    track(a, order, "q2", 3);
    const err = await a.acquire(4, "trend").catch((e: unknown) => e);
    expect((err as AdmissionRejected).reason).toBe("queue_full");
    expect(shed).toEqual(["trend:queue_full"]);
  });

  test("a heavy request waits for all its slots and lighter ones do not pass it; weight is capped", async () => {
    const { a } = setup({ concurrency: 3 });
    const order: string[] = [];
    const one = track(a, order, "one", 1, "trend", 1);
    const heavy = track(a, order, "heavy", 2, "trend", 3);
    const light = track(a, order, "light", 3, "trend", 1);
    await settle();
    expect(order).toEqual(["one"]);
    one.permit!.release();
    await settle();
    expect(order).toEqual(["one", "heavy"]);
    expect(heavy.permit!.slots).toBe(3);
    heavy.permit!.release();
    await settle();
    expect(order).toEqual(["one", "heavy", "light"]);
    light.permit!.release();
    const capped = await a.acquire(9, "trend", 50);
    expect(capped.slots).toBe(3);
    capped.release();
  });

  test("heavy kinds hold at most their share of slots; a short query passes a waiting heavy one", async () => {
    const { a, shed } = setup({ concurrency: 2, heavyKinds: ["funnel"], maxHeavySlots: 1 });
    const order: string[] = [];
    const f1 = track(a, order, "f1", 1, "funnel");
    const f2 = track(a, order, "f2", 1, "funnel");
    await settle();
    // f2 waits although a slot is free: the heavy share is taken. Its expected start is f1's end.
    expect(order).toEqual(["f1"]);
    expect(a.queued).toBe(1);
    const t = track(a, order, "t", 1, "trend");
    await settle();
    expect(order).toEqual(["f1", "t"]);
    // A trend now waits for the first slot to free (t's, at 100 ms), not behind f2.
    expect(a.expectedWaitMs(1, 1, undefined, "trend")).toBe(100);
    f1.permit!.release();
    await settle();
    expect(order).toEqual(["f1", "t", "f2"]);
    t.permit!.release();
    f2.permit!.release();
    expect(a.slotsInUse).toBe(0);
    expect(shed).toEqual([]);
  });

  test("a client that goes away while queued leaves the queue", async () => {
    const { a } = setup({ concurrency: 1 });
    const order: string[] = [];
    const h = track(a, order, "run", 1);
    const ctl = new AbortController();
    const gone = track(a, order, "gone", 2, "trend", 1, ctl.signal);
    const next = track(a, order, "next", 3);
    await settle();
    expect(a.queued).toBe(2);
    ctl.abort();
    await settle();
    expect(gone.error).toBeInstanceOf(AdmissionCancelled);
    expect(a.queued).toBe(1);
    h.permit!.release();
    await settle();
    expect(order).toEqual(["run", "next"]);
    next.permit!.release();
  });

  test("hold times update each kind's estimate (moving average)", async () => {
    const { a, clock } = setup({ smoothing: 0.5, initialServiceMs: { trend: 100 } });
    expect(a.averageServiceMs("trend")).toBe(100);
    // The first measurement replaces the configured guess; later ones move the average.
    const p0 = await a.acquire(1, "trend");
    clock.advance(100);
    p0.release();
    expect(a.averageServiceMs("trend")).toBe(100);
    const p = await a.acquire(1, "trend");
    clock.advance(300);
    p.release();
    expect(a.averageServiceMs("trend")).toBe(200);
    const q = await a.acquire(1, "breakdown");
    clock.advance(50);
    q.release();
    // A kind without an initial estimate takes its first measurement as it is.
    expect(a.averageServiceMs("breakdown")).toBe(50);
  });

  test("run() releases the slots when the work throws", async () => {
    const { a } = setup({ concurrency: 1 });
    await expect(a.run(1, "trend", 1, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(a.slotsInUse).toBe(0);
    expect(await a.run(1, "trend", 1, async (p) => p.slots)).toBe(1);
  });
});
