/** The `projects` table (infrastructure/postgres/migrations/001_projects.sql) through postgres.js. */
import type { Sql } from "../postgres/client.ts";
import type { Project, ProjectSource } from "./project.ts";

export class PostgresProjects implements ProjectSource {
  constructor(private readonly sql: Sql) {}

  async findByToken(token: string): Promise<Project | null> {
    const rows = await this.sql<Project[]>`SELECT id, name, token FROM projects WHERE token = ${token}`;
    return rows[0] ?? null;
  }

  async insert(name: string, token: string, secretKeyHash: string): Promise<Project> {
    const rows = await this.sql<Project[]>`
      INSERT INTO projects (name, token, secret_key_hash) VALUES (${name}, ${token}, ${secretKeyHash})
      RETURNING id, name, token`;
    return rows[0]!;
  }
}
