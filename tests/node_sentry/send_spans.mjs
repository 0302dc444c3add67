// Sends one trace with @sentry/node to the DSN in OPSWATCH_DSN and prints its trace id.
// TRACE_LIFECYCLE=static sends a classic transaction; otherwise spans are streamed (the default).
import * as Sentry from "@sentry/node";

const options = {
  dsn: process.env.OPSWATCH_DSN,
  tracesSampleRate: 1.0,
  environment: "production",
  release: "web@3.0.0",
  defaultIntegrations: false,
  sendClientReports: false,
};
if (process.env.TRACE_LIFECYCLE === "static") options.traceLifecycle = "static";
Sentry.init(options);

let traceId = "";
await Sentry.startSpan({ name: "GET /orders", op: "http.server", forceTransaction: true }, async (root) => {
  traceId = root.spanContext().traceId;
  await Sentry.startSpan({ name: "SELECT orders", op: "db.query", attributes: { "db.system": "postgresql" } },
    async () => { await new Promise((resolve) => setTimeout(resolve, 5)); });
  Sentry.startSpan({ name: "render", op: "template.render" }, () => {});
});
await Sentry.flush(5000);
await Sentry.close(5000);
console.log(traceId);
