/** The OpenAPI 3.1 document, generated from the same valibot schemas that validate requests (GET /openapi.json). */
import { toJsonSchema } from "@valibot/to-json-schema";
import * as v from "valibot";
import { ERRORS } from "./errors.ts";
import { EventNamesRequestSchema, EventNamesResponseSchema } from "./event-names.ts";
import { EventsRequestSchema, EventsResponseSchema } from "./events.ts";
import { FunnelsRequestSchema, FunnelsResponseSchema } from "./funnels.ts";
import { PropertyKeysRequestSchema, PropertyKeysResponseSchema } from "./property-keys.ts";
import { TrendsRequestSchema, TrendsResponseSchema } from "./trends.ts";

const ErrorSchema = v.object({
  type: v.string(),
  code: v.picklist(Object.keys(ERRORS) as [keyof typeof ERRORS, ...(keyof typeof ERRORS)[]]),
  detail: v.string(),
  path: v.optional(v.pipe(v.string(), v.description("the request field at fault, e.g. series.0.filters.1.key"))),
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
        "503": error("ClickHouse or PostgreSQL unavailable; retry"),
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
        "503": error("ClickHouse or PostgreSQL unavailable; retry"),
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
        "Event counts, unique users or events per user over time, per series, optionally broken down by properties (top N + $other, $none when unset).",
        TrendsRequestSchema,
        TrendsResponseSchema,
      ),
      "/api/funnels": operation(
        "Funnels",
        "Persons converting through 2..10 steps within a window: ordered, strict or unordered, counted by person, with time between steps.",
        FunnelsRequestSchema,
        FunnelsResponseSchema,
      ),
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
