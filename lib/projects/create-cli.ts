/**
 * `bun run project:create <name>`: creates a project and prints its public token and its secret key. The
 * secret is printed once; only its SHA-256 is stored. `--json` prints one JSON object instead (for scripts).
 */
import { join } from "node:path";
import * as v from "valibot";
import { configOrExit, loadConfig, postgresUrl } from "../config/env.ts";
import { createPostgres } from "../postgres/client.ts";
import { migrate } from "../postgres/migrate.ts";
import { createProject } from "./create-project.ts";

const config = configOrExit(() =>
  loadConfig(v.object({ POSTGRES_URL: postgresUrl("postgres://ingest:ingest@127.0.0.1:5432/ingest") })),
);

const args = process.argv.slice(2);
const json = args.includes("--json");
const name = args.filter((a) => a !== "--json").join(" ").trim();
if (!name) {
  console.error("usage: bun run project:create <name> [--json]");
  process.exit(2);
}

const sql = createPostgres(config.POSTGRES_URL, { max: 1 });
try {
  // Idempotent; lets the CLI work on a database nobody has initialised yet.
  await migrate(sql, join(import.meta.dir, "../../infrastructure/postgres/migrations"));
  const { project, secretKey } = await createProject(sql, name);
  if (json) {
    console.log(JSON.stringify({ id: project.id, name: project.name, token: project.token, secret_key: secretKey }));
  } else {
    console.log(`project     ${project.id} ${JSON.stringify(project.name)}`);
    console.log(`token       ${project.token}    (public: capture, SDKs)`);
    console.log(`secret key  ${secretKey}    (queries; shown only now - store it safely)`);
    console.log(`insights    http://127.0.0.1:${process.env.QUERY_PORT ?? "8001"}/app    (sign in there with the secret key)`);
  }
} catch (err) {
  console.error(`project:create failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await sql.end({ timeout: 5 });
}
