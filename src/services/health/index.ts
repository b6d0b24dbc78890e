export { createHealthStatus, serveHealth, Health, ServingStatus } from "./health.js";
export type { HealthStatus, ServingStatusInit } from "./health.js";
