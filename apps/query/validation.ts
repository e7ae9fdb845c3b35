/** Request validation: valibot issues become one 400 `invalid_request` naming the first offending path. */
import * as v from "valibot";
import { QueryApiError } from "./errors.ts";

export function issuePath(issue: v.BaseIssue<unknown>): string {
  return issue.path?.map((p) => String(p.key)).join(".") ?? "";
}

export function parseRequest<S extends v.GenericSchema>(schema: S, body: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, body, { abortPipeEarly: true });
  if (result.success) return result.output;
  // Unions report their nested issues; the deepest one names the field the client actually got wrong.
  let issue: v.BaseIssue<unknown> = result.issues[0];
  while (issue.issues?.length) {
    const deeper = issue.issues.reduce((best, i) => ((i.path?.length ?? 0) > (best.path?.length ?? 0) ? i : best));
    if ((deeper.path?.length ?? 0) < (issue.path?.length ?? 0)) break;
    issue = deeper;
  }
  const path = issuePath(issue);
  throw new QueryApiError("invalid_request", path ? `${path}: ${issue.message}` : issue.message, path);
}
