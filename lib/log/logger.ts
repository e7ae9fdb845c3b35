/** Structured JSON logs (pino). One logger per app, children per module; never a line per event on hot paths. */
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(app: string, level: string = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ name: app, level, base: { app, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
