/**
 * Token -> project for the start-up routes (remote config, /flags, /decide) and the v1 events route, through the
 * same cached ProjectResolver as the event pipeline. "Unavailable" (no store can answer and the token is not
 * cached) is neither "known" nor "unknown": callers answer 503 + Retry-After, never "invalid token".
 */
import { ProjectLookupUnavailable, type Project } from "../../../lib/projects/project.ts";
import type { ProjectResolver } from "../../../lib/projects/project-resolver.ts";

export type ProjectLookup = { kind: "found"; project: Project } | { kind: "unknown" } | { kind: "unavailable" };

/** Real tokens are 47 characters; anything longer is not worth a cache key. */
const MAX_TOKEN_LENGTH = 200;

export async function lookupProject(projects: Pick<ProjectResolver, "resolve">, token: string): Promise<ProjectLookup> {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return { kind: "unknown" };
  try {
    const project = await projects.resolve(token);
    return project ? { kind: "found", project } : { kind: "unknown" };
  } catch (err) {
    if (err instanceof ProjectLookupUnavailable) return { kind: "unavailable" };
    throw err;
  }
}

export function unavailableResponse(retryAfterS: number): Response {
  return Response.json(
    { type: "unavailable", code: "project_lookup_unavailable", detail: "cannot verify the project token right now" },
    { status: 503, headers: { "retry-after": String(Math.max(1, Math.ceil(retryAfterS))) } },
  );
}
