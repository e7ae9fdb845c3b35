/** Creates a project and its credentials; the secret key is returned once and never stored in clear. */
import type { Sql } from "../postgres/client.ts";
import { PostgresProjects } from "./postgres-projects.ts";
import type { Project } from "./project.ts";
import { hashSecretKey, newProjectToken, newSecretKey } from "./project-keys.ts";

export interface CreatedProject {
  project: Project;
  /** Shown to the operator exactly once. */
  secretKey: string;
}

export async function createProject(sql: Sql, name: string): Promise<CreatedProject> {
  const trimmed = name.trim();
  if (trimmed.length < 1 || trimmed.length > 200) throw new RangeError("project name must be 1 to 200 characters");
  const secretKey = newSecretKey();
  const project = await new PostgresProjects(sql).insert(trimmed, newProjectToken(), hashSecretKey(secretKey));
  return { project, secretKey };
}
