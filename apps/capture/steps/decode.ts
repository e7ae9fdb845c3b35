/** decode: body (any encoding) -> JSON -> events, request token and sent_at. */
import type { Step } from "../pipeline.ts";
import { decodePayload } from "../payload-decoder.ts";
import { shapePayload } from "../payload-shape.ts";

export function decodeStep(): Step {
  return {
    name: "decode",
    run(ctx) {
      const { body, hints, maxBytes } = ctx.input;
      const shape = shapePayload(decodePayload(body, hints, maxBytes));
      ctx.events = shape.events;
      ctx.isBatch = shape.isBatch;
      ctx.requestToken = shape.requestToken;
      ctx.sentAt = shape.sentAt ?? ctx.input.querySentAt;
    },
  };
}
