/** The project's event names and property keys, loaded once per sign-in for the pickers. */
import { api, type EventName } from "./api.ts";

let names: Promise<EventName[]> | null = null;
let keys: Promise<string[]> | null = null;

export function eventNames(): Promise<EventName[]> {
  names ??= api<{ results: EventName[] }>("/api/event_names?days=90").then((r) => r.results);
  names.catch(() => (names = null));
  return names;
}

export function propertyKeys(): Promise<string[]> {
  keys ??= api<{ results: { key: string }[] }>("/api/property_keys?days=90").then((r) => r.results.map((k) => k.key));
  keys.catch(() => (keys = null));
  return keys;
}

export function resetCatalog(): void {
  names = null;
  keys = null;
}
