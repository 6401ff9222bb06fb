/**
 * Operating the server: Prometheus metrics, a live admin page and a health
 * check, as request handlers on Node's http types (Express 4 and 5,
 * connect, bare `http`). Each takes the protocol server as an `OpsSource`
 * (`cometd.metrics()` and friends pass their own).
 */
export { createMetricsHandler, type MetricsHandler, type MetricsOptions } from './metrics.js';
export { createAdminHandler, type AdminHandler, type AdminOptions } from './admin.js';
export type { AdminChannel, AdminDisconnect, AdminNode, AdminSample, AdminSnapshot } from './admin-data.js';
export { checkHealth, createHealthHandler, type HealthOptions, type HealthReport } from './health.js';
export type { OpsHandler, OpsNext } from './http.js';
export { createPublishHandler, type PublishHandlerOptions, type PublishSource } from './publish.js';
