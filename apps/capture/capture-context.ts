/**
 * What the capture pipeline works on. `CaptureInput` is the clean request, built once before the pipeline
 * (body read under its cap, hints, client address, the clock); `CaptureContext` accumulates what each step adds.
 */
import type { IncomingEvent } from "../../lib/events/incoming-event.ts";
import type { Project } from "../../lib/projects/project.ts";
import type { OutgoingEvent } from "./event-sink.ts";
import type { BodyHints } from "./payload-decoder.ts";

export interface CaptureInput {
  body: Uint8Array;
  hints: BodyHints;
  /** Cap for the decoded body: 20 MB on /batch, 2 MB elsewhere. */
  maxBytes: number;
  /** `?_=` (posthog-js: the send time in epoch ms), used when the body has no `sent_at`. */
  querySentAt: string | undefined;
  /** Client address ("" when IP capture is off or unknown). */
  clientIp: string;
  /** The server's clock for this request, read once. */
  nowMs: number;
}

export interface CaptureContext {
  readonly input: CaptureInput;
  /** decode: the request's events, not yet validated. */
  events: unknown[];
  isBatch: boolean;
  requestToken: unknown;
  sentAt: unknown;
  /** authenticate */
  project: Project | null;
  /** validate */
  valid: IncomingEvent[];
  /** rate_limit: send to the overflow topic, without key. */
  overflow: boolean;
  /** normalize */
  messages: OutgoingEvent[];
}

export function newCaptureContext(input: CaptureInput): CaptureContext {
  return {
    input,
    events: [],
    isBatch: false,
    requestToken: undefined,
    sentAt: undefined,
    project: null,
    valid: [],
    overflow: false,
    messages: [],
  };
}
