import type { ProjectSettings } from "./project-settings.ts";

/** A project (PostHog: team): events captured with its public token carry its id as `team_id`. */
export interface Project {
  id: number;
  name: string;
  token: string;
  /** What the SDKs are told at start-up; absent = DEFAULT_PROJECT_SETTINGS (project-settings.ts). */
  settings?: Partial<ProjectSettings>;
}

/** Where projects live (PostgreSQL in production); `null` means "no project has this token". */
export interface ProjectSource {
  findByToken(token: string): Promise<Project | null>;
}

/**
 * The token's project is unknown to us right now and every store that could say is unreachable: neither "yes"
 * nor "no" can be answered, so the caller must answer "retry later", not "unauthorised".
 */
export class ProjectLookupUnavailable extends Error {
  constructor(readonly token: string, cause: unknown) {
    super(`project lookup unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "ProjectLookupUnavailable";
  }
}
