/**
 * Decoded JSON -> the request's events, the token given for the whole request, and its `sent_at`. Three shapes:
 *
 *   { "event": ..., ... }                                  one event (its own api_key/token/sent_at)
 *   [ {event}, {event}, ... ]                              a bare array
 *   { "api_key" | "token": ..., "batch": [...], "sent_at" } a batch envelope (posthog-node, posthog-python, ...)
 */
import { CaptureError } from "./capture-error.ts";

export interface PayloadShape {
  events: unknown[];
  /** True for the array and envelope forms: errors then name the event's index. */
  isBatch: boolean;
  requestToken: unknown;
  sentAt: unknown;
}

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === "object" && !Array.isArray(x);

export function shapePayload(json: unknown): PayloadShape {
  if (Array.isArray(json)) return { events: json, isBatch: true, requestToken: undefined, sentAt: undefined };
  if (!isObject(json)) throw new CaptureError("invalid_payload", "expected an event object, an array of events or a batch");
  if ("batch" in json) {
    if (!Array.isArray(json.batch)) throw new CaptureError("invalid_payload", "`batch` must be an array of events");
    return { events: json.batch, isBatch: true, requestToken: json.api_key ?? json.token, sentAt: json.sent_at };
  }
  return { events: [json], isBatch: false, requestToken: undefined, sentAt: json.sent_at };
}

/** The token an event names for itself, from any of the places SDKs put it. */
export function eventToken(e: unknown): unknown {
  if (!isObject(e)) return undefined;
  const props = e.properties;
  return e.api_key ?? e.token ?? e.$token ?? (isObject(props) ? props.token : undefined);
}
