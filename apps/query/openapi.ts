/** The OpenAPI 3.1 document, generated from the same valibot schemas that validate requests (GET /openapi.json). */
import { toJsonSchema } from "@valibot/to-json-schema";
import * as v from "valibot";
import { ERRORS } from "./errors.ts";
import { EventNamesRequestSchema, EventNamesResponseSchema } from "./event-names.ts";
import { EventsRequestSchema, EventsResponseSchema } from "./events.ts";
import { PersonResponseSchema } from "./persons.ts";
import { FunnelsRequestSchema, FunnelsResponseSchema } from "./funnels.ts";
import { PropertyKeysRequestSchema, PropertyKeysResponseSchema } from "./property-keys.ts";
import { TrendsRequestSchema, TrendsResponseSchema } from "./trends.ts";

const ErrorSchema = v.object({
  type: v.string(),
  code: v.picklist(Object.keys(ERRORS) as [keyof typeof ERRORS, ...(keyof typeof ERRORS)[]]),
  detail: v.string(),
  path: v.optional(v.pipe(v.string(), v.description("the request field at fault, e.g. series.0.filters.1.key"))),
  reason: v.optional(
    v.pipe(v.picklist(["expected_wait", "wait_timeout", "queue_full", "cancelled"]), v.description("code overloaded: why admission control refused the request")),
  ),
});

const json = (schema: v.GenericSchema, io: "input" | "output") =>
  toJsonSchema(schema, { target: "draft-2020-12", typeMode: io, errorMode: "ignore" });

function operation(summary: string, description: string, request: v.GenericSchema, response: v.GenericSchema) {
  const error = (d: string) => ({ description: d, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
  return {
    post: {
      summary,
      description,
      security: [{ projectKey: [] }],
      parameters: [
        {
          name: "Cache-Control",
          in: "header",
          required: false,
          description: "`no-cache` skips the result cache (X-Cache: bypass)",
          schema: { type: "string" },
        },
      ],
      requestBody: { required: true, content: { "application/json": { schema: json(request, "input") } } },
      responses: {
        "200": {
          description: "the result; header X-Cache is hit, miss or bypass",
          headers: { "X-Cache": { schema: { type: "string", enum: ["hit", "miss", "bypass"] } } },
          content: { "application/json": { schema: json(response, "output") } },
        },
        "400": error("invalid request (type invalid_request): `path` names the field"),
        "401": error("missing, malformed or unknown key"),
        "403": error("project_id is not the key's project"),
        "503": error(
          "ClickHouse or PostgreSQL unavailable (clickhouse_unavailable, auth_unavailable), or refused by admission control (overloaded, with `reason`); retry after the Retry-After header",
        ),
        "504": error("the query exceeded the configured max_execution_time"),
      },
    },
  };
}

/** A GET endpoint whose query parameters are the fields of a valibot object schema. */
function getOperation(summary: string, description: string, query: v.ObjectSchema<v.ObjectEntries, undefined> | v.StrictObjectSchema<v.ObjectEntries, undefined>, response: v.GenericSchema) {
  const error = (d: string) => ({ description: d, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
  return {
    get: {
      summary,
      description,
      security: [{ projectKey: [] }],
      parameters: Object.entries(query.entries).map(([name, schema]) => ({ name, in: "query", required: false, schema: json(schema, "input") })),
      responses: {
        "200": { description: "the result", content: { "application/json": { schema: json(response, "output") } } },
        "400": error("invalid or unknown parameter (type invalid_request): `path` names it"),
        "401": error("missing, malformed or unknown key"),
        "503": error(
          "ClickHouse or PostgreSQL unavailable (clickhouse_unavailable, auth_unavailable), or refused by admission control (overloaded, with `reason`); retry after the Retry-After header",
        ),
        "504": error("the query exceeded the configured max_execution_time"),
      },
    },
  };
}

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "ingest query API",
      version: "1.0.0",
      description: "Trends, funnels and the newest events over the project's events in ClickHouse. Authenticate with the project's secret query key.",
    },
    paths: {
      "/api/trends": operation(
        "Trends",
        "Event counts, unique users (persons: all distinct_ids of a person count once) or events per user over time, per series, optionally broken down by properties (top N + $other, $none when unset).",
        TrendsRequestSchema,
        TrendsResponseSchema,
      ),
      "/api/funnels": operation(
        "Funnels",
        "Persons converting through 2..10 steps within a window: ordered, strict or unordered, counted by person, with time between steps.",
        FunnelsRequestSchema,
        FunnelsResponseSchema,
      ),
      "/api/persons/{distinct_id}": {
        get: {
          summary: "Person of a distinct_id",
          description:
            "The person the distinct_id belongs to (after $identify / $create_alias / $merge_dangerously merges), all of its distinct_ids and its properties ($set, $set_once, $unset). 404 not_found when the id never took part in a merge nor carried person properties: trends and funnels then count it as a person of its own. Never cached.",
          security: [{ projectKey: [] }],
          parameters: [{ name: "distinct_id", in: "path", required: true, schema: { type: "string", minLength: 1, maxLength: 200 } }],
          responses: {
            "200": { description: "the person", content: { "application/json": { schema: json(PersonResponseSchema, "output") } } },
            "400": { description: "invalid distinct_id", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
            "401": { description: "missing, malformed or unknown key", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
            "404": { description: "no person has this distinct_id (code not_found)", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
            "503": { description: "ClickHouse unavailable or overloaded; retry", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
          },
        },
      },
      "/api/events": getOperation(
        "Newest events",
        "The project's newest events, newest first (duplicates removed); `after` polls for new ones, `before` pages back. Never cached.",
        EventsRequestSchema,
        EventsResponseSchema,
      ),
      "/api/event_names": getOperation(
        "Event names",
        "Event names of the last `days` days with their stored row count and last seen instant, most frequent first (at most 1000).",
        EventNamesRequestSchema,
        EventNamesResponseSchema,
      ),
      "/api/property_keys": getOperation(
        "Property keys",
        "Property keys found on a sample of up to 10,000 events of the last `days` days (optionally of one event), most common first.",
        PropertyKeysRequestSchema,
        PropertyKeysResponseSchema,
      ),
      "/health": { get: { summary: "process is up", responses: { "200": { description: "ok" } } } },
      "/ready": { get: { summary: "ClickHouse, PostgreSQL and Redis answer", responses: { "200": { description: "ready" }, "503": { description: "a dependency is down" } } } },
      "/metrics": { get: { summary: "Prometheus metrics", responses: { "200": { description: "text exposition format" } } } },
    },
    components: {
      securitySchemes: { projectKey: { type: "http", scheme: "bearer", description: "the project's secret query key" } },
      schemas: { Error: json(ErrorSchema, "output") },
    },
  };
}
