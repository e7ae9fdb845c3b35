/** apps/capture entry point: configuration from the environment, the service, signals. Wiring only. */
import { configOrExit } from "../../lib/config/env.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { startCaptureService } from "./capture-service.ts";
import { loadCaptureConfig } from "./config.ts";

const config = configOrExit(() => loadCaptureConfig());
const logger = createLogger("capture", config.LOG_LEVEL);
const service = startCaptureService(config, logger);

// SIGTERM: /ready 503 while still serving for the drain period, then stop accepting, answer in-flight requests,
// flush the producer, exit 0.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    logger.info({ signal }, "shutting down: draining requests, flushing Kafka");
    void service.stop().then(() => process.exit(0));
  });
}
