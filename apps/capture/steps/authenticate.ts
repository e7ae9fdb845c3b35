/**
 * authenticate: one token for the whole request (top level, or every event that names one agrees), mapped to
 * its project. Unknown token: 401. Token stores down and token not cached: 503 (we cannot say it is invalid).
 */
import { ProjectLookupUnavailable } from "../../../lib/projects/project.ts";
import type { ProjectResolver } from "../../../lib/projects/project-resolver.ts";
import { CaptureError } from "../capture-error.ts";
import { eventToken } from "../payload-shape.ts";
import type { Step } from "../pipeline.ts";

/** Real tokens are 47 characters; anything this long is not worth a Redis key. */
const MAX_TOKEN_LENGTH = 200;

export function authenticateStep(projects: Pick<ProjectResolver, "resolve">, retryAfterS: number): Step {
  return {
    name: "authenticate",
    async run(ctx) {
      let token = ctx.requestToken ?? undefined;
      for (let i = 0; i < ctx.events.length; i++) {
        const t = eventToken(ctx.events[i]);
        if (t === undefined || t === null) continue;
        if (token === undefined) token = t;
        else if (t !== token) {
          throw new CaptureError("mixed_tokens", "events of one request must all use the same token", {
            index: ctx.isBatch ? i : undefined,
          });
        }
      }
      if (typeof token !== "string" || token === "") {
        throw new CaptureError("missing_token", "no project token (`api_key`, `token` or `properties.token`)");
      }
      if (token.length > MAX_TOKEN_LENGTH) throw new CaptureError("invalid_token", "unknown project token");
      try {
        ctx.project = await projects.resolve(token);
      } catch (err) {
        if (err instanceof ProjectLookupUnavailable) {
          throw new CaptureError("project_lookup_unavailable", "cannot verify the project token right now", {
            retryAfterS,
            cause: err,
          });
        }
        throw err;
      }
      if (!ctx.project) throw new CaptureError("invalid_token", "unknown project token");
    },
  };
}
